// imgsearch console, instances: the list with counts, the selected instance's settings,
// and creating or deleting an instance through the admin routes
// (`POST /admin/instance/create`, `POST /admin/instance/delete`), which answer loopback
// clients only and, with access keys, a key not limited to instances.
//
// State for tests and tools: #instance-details carries data-name of the instance shown and
// each value a data-field; #create-status carries data-state (ok | error) and data-code.

import {
  $, el, server, vendorError, showError, clearError, asVendorError, callAdmin, getConsole,
  confirmAction,
} from './common.js';
import { credentials, signing } from './sign.js';
import { clearResults } from './search.js';

/** Service types as the vendor numbers them, with the names the CLI takes. */
const SERVICE_TYPES = ['product', 'generic', 'fabric', 'trademark', 'copyright', 'furniture', 'hardware'];

/** Reads the settings and the instances the caller may see, and shows them. */
export async function loadInstances() {
  const settings = await getConsole('/console/api/settings');
  signing.enabled = settings.SignedRequests;
  server.SignedRequests = settings.SignedRequests;
  server.ThumbnailSize = settings.ThumbnailSize;
  if (server.SignedRequests && !credentials()) {
    throw vendorError('SignInRequired', 'this server requires signed requests: enter an access key');
  }
  Object.assign(server, await getConsole('/console/api/instances'));
  renderInstances();
  renderMode();
}

/** Reads the instances again (after a change), keeping the selection when it still exists. */
export async function refreshInstances() {
  try {
    Object.assign(server, await getConsole('/console/api/instances'));
  } catch (e) {
    showError(asVendorError(e));
    return;
  }
  renderInstances();
}

function renderInstances() {
  const select = $('instance');
  const chosen = select.value;
  const body = $('instances').tBodies[0];
  body.replaceChildren();
  select.replaceChildren();
  for (const inst of server.Instances) {
    const row = el('tr', { 'data-name': inst.Name, title: 'Search in ' + inst.Name },
      el('td', null, el('span', { class: 'name' }, inst.Name),
        el('small', null, inst.Extractor + ', ' + inst.Dimension + '-d')),
      el('td', null, inst.ServiceTypeName),
      el('td', { class: 'num' }, inst.TotalCount.toLocaleString()),
      el('td', { class: 'num' }, inst.Capacity.toLocaleString()),
      // 0 is no limit: a narrow sign keeps the table inside its panel.
      el('td', { class: 'num', title: qpsText(inst.Qps) + ' searches per second' }, inst.Qps ? inst.Qps : '∞'));
    row.addEventListener('click', () => selectInstance(inst.Name));
    body.append(row);
    select.append(el('option', { value: inst.Name }, inst.Name));
  }
  const names = server.Instances.map((i) => i.Name);
  select.value = names.includes(chosen) ? chosen : names[0] || '';
  markSelected();
}

/** QPS 0 is no limit. */
function qpsText(qps) {
  return qps ? String(qps) : 'unlimited';
}

/** Makes `name` the instance searched, added to and shown. */
export function selectInstance(name) {
  $('instance').value = name;
  markSelected();
}

/** Marks the selected row and shows that instance's settings. */
function markSelected() {
  const name = $('instance').value;
  for (const row of $('instances').tBodies[0].rows) {
    row.classList.toggle('selected', row.dataset.name === name);
  }
  renderDetails(server.Instances.find((i) => i.Name === name));
}

/** The selected instance's settings and counts, and its delete button. */
function renderDetails(inst) {
  const panel = $('instance-details');
  const list = $('details');
  list.replaceChildren();
  $('add-target').textContent = inst ? inst.Name : '—';
  if (!inst) {
    panel.hidden = true;
    delete panel.dataset.name;
    return;
  }
  panel.hidden = false;
  panel.dataset.name = inst.Name;
  $('details-name').textContent = inst.Name;
  const created = Number(inst.UtcCreate);
  const rows = [
    ['ServiceType', 'Service type', inst.ServiceTypeName + ' (' + inst.ServiceType + ')'],
    ['Qps', 'QPS', qpsText(inst.Qps)],
    ['Capacity', 'Capacity', inst.Capacity.toLocaleString()],
    ['Pictures', 'Pictures', inst.TotalCount.toLocaleString()],
    ['Extractor', 'Extractor', inst.Extractor],
    ['Dimension', 'Dimension', inst.Dimension],
    ['LocalFeatures', 'Local features', inst.LocalFeatures ? 'on' : 'off'],
    ['Whitened', 'Whitening', inst.Whitened ? 'on' : 'off'],
    ['UtcCreate', 'Created', Number.isFinite(created) ? new Date(created).toISOString().replace(/\.\d+Z$/, 'Z') : '—'],
  ];
  for (const [field, label, value] of rows) {
    list.append(el('div', null, el('dt', null, label), el('dd', { 'data-field': field }, value)));
  }
}

function renderMode() {
  const notice = $('notice');
  const lines = [];
  if (server.SignedRequests) {
    const key = credentials();
    $('mode').textContent = 'Signed API · requests signed with ' + (key ? key.id : 'no key');
    $('signout').hidden = !key;
  } else {
    $('mode').textContent = 'Open API on a loopback address · searches go to /?Action=…';
  }
  if (!server.ThumbnailSize) {
    lines.push('Thumbnails are off (--thumbnail-size 0): pictures added now get no preview.');
  }
  notice.replaceChildren(...lines.map((line) => el('p', null, line)));
  notice.hidden = lines.length === 0;
}

// ---- creating and deleting -------------------------------------------------------------

/** Shows how the last create went: `ok` with a text, or a vendor error. */
function createStatus(state, text, code) {
  const status = $('create-status');
  status.dataset.state = state;
  if (code) status.dataset.code = code;
  else delete status.dataset.code;
  status.textContent = text;
  status.hidden = false;
}

/** Sends the create form to `POST /admin/instance/create`. */
async function createInstance() {
  const name = $('new-name').value.trim();
  const extractor = $('new-extractor').value;
  const params = {
    InstanceName: name,
    ServiceType: $('new-type').value,
    Qps: $('new-qps').value.trim() || '0',
    Capacity: $('new-capacity').value.trim(),
    Extractor: extractor,
    Model: extractor === 'onnx' ? $('new-model').value.trim() : '',
    LocalFeatures: $('new-local').checked ? 'true' : 'false',
  };
  const button = $('create-button');
  button.disabled = true;
  try {
    const reply = await callAdmin('/admin/instance/create', params);
    const made = reply.Instance || { Name: name };
    $('new-name').value = '';
    // Selected before the status says so: pictures added once "ok" shows go to the new
    // instance, not to the one selected before.
    await refreshInstances();
    selectInstance(made.Name);
    createStatus('ok', 'Created ' + made.Name + ' (' + (made.Extractor || extractor) + ', '
      + (made.Dimension || '?') + '-d' + (made.LocalFeatures ? ', local features' : '') + ').');
  } catch (e) {
    const error = asVendorError(e);
    createStatus('error', error.Code + ': ' + error.Message, error.Code);
  } finally {
    button.disabled = false;
  }
}

/** Asks, then deletes the selected instance with `POST /admin/instance/delete`. */
async function deleteInstance() {
  const name = $('instance-details').dataset.name;
  const inst = server.Instances.find((i) => i.Name === name);
  if (!inst) return;
  const ok = await confirmAction('Delete the instance "' + name + '" and its '
    + inst.TotalCount.toLocaleString() + ' pictures? This cannot be undone.', 'Delete instance');
  if (!ok) return;
  clearError();
  try {
    await callAdmin('/admin/instance/delete', { InstanceName: name });
  } catch (e) {
    showError(asVendorError(e));
    return;
  }
  clearResults();
  await refreshInstances();
}

/** Wires the create form, the extractor's model field and the delete button. */
export function wireInstances() {
  const type = $('new-type');
  SERVICE_TYPES.forEach((t, code) => type.append(el('option', { value: t }, t + ' (' + code + ')')));
  type.value = 'product';
  const extractor = $('new-extractor');
  const showModel = () => {
    $('new-model-field').hidden = extractor.value !== 'onnx';
  };
  extractor.addEventListener('change', showModel);
  showModel();
  $('create-form').addEventListener('submit', (e) => {
    e.preventDefault();
    createInstance();
  });
  $('delete-instance').addEventListener('click', deleteInstance);
  $('instance').addEventListener('change', markSelected);
}
