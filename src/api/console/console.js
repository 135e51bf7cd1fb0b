// imgsearch console: lists the instances, searches by picture (SearchImageByPic) or by
// a stored picture (SearchImageByName) through the same API every client uses, shows the
// results with their stored thumbnails, and administers: creates and deletes instances,
// adds pictures (files or a dropped folder), deletes pictures and products. Plain
// JavaScript modules, no dependencies:
//   sign.js       RPC signature V1 for servers with access keys
//   common.js     DOM helpers, errors, the calls (Actions, admin routes, console routes)
//   search.js     searching and the results
//   instances.js  the instance list and settings, creating and deleting instances
//   pictures.js   adding pictures, deleting pictures and products
//
// State for tests and tools: <main data-state> is loading | signin | ready | searching |
// done | error (the parts document their own markers).

import { $, el, server, vendorError, showError, setState } from './common.js';
import { keyFromFragment, setCredentials } from './sign.js';
import { searchByFile, searchByName, run } from './search.js';
import { loadInstances, selectInstance, wireInstances } from './instances.js';
import { wirePictures } from './pictures.js';

/** Shows the sign-in form; a submitted key is kept in the tab and the page starts over. */
function askForKey(reason) {
  const form = $('signin');
  form.hidden = false;
  $('signin-reason').textContent = reason;
  setState('signin');
  $('access-key-id').focus();
}

/** Search input: the drop zone, the file chooser, paste, and a drop anywhere on the page. */
function wire() {
  const drop = $('drop');
  const file = $('file');
  drop.addEventListener('click', () => file.click());
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      file.click();
    }
  });
  file.addEventListener('change', () => {
    searchByFile(file.files[0]);
    file.value = '';
  });
  for (const name of ['dragenter', 'dragover']) {
    drop.addEventListener(name, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const name of ['dragleave', 'drop']) {
    drop.addEventListener(name, () => drop.classList.remove('over'));
  }
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    searchByFile(e.dataTransfer.files[0]);
  });
  // A picture dropped anywhere else searches too, instead of the browser opening it.
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => {
    if (e.defaultPrevented) return;
    e.preventDefault();
    searchByFile(e.dataTransfer.files[0]);
  });
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.kind === 'file');
    if (item) searchByFile(item.getAsFile());
  });
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });
}

/** Errors that mean "sign in (again)". */
const AUTH_CODES = new Set(['SignInRequired', 'InvalidAccessKeyId.NotFound', 'SignatureDoesNotMatch',
  'MissingParameter']);

/** Keeps a typed key in the tab (not in the page's URL) and starts over with it. */
function wireSignIn() {
  $('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    setCredentials({ id: $('access-key-id').value.trim(), secret: $('access-key-secret').value });
    location.reload();
  });
  $('signout').addEventListener('click', () => {
    setCredentials(null);
    location.reload();
  });
}

/** Applies `?instance=&product=&pic=&num=&filter=&distinct=` and runs that search. */
async function start() {
  keyFromFragment();
  wire();
  wireSignIn();
  wireInstances();
  wirePictures();
  const q = new URLSearchParams(location.search);
  if (q.get('filter')) $('filter').value = q.get('filter');
  if (q.get('num')) {
    const num = $('num');
    if (![...num.options].some((o) => o.value === q.get('num'))) num.append(el('option', null, q.get('num')));
    num.value = q.get('num');
  }
  $('distinct').checked = q.get('distinct') === 'true';
  if (q.get('crop') === 'false') $('crop').checked = false;
  try {
    await loadInstances();
  } catch (e) {
    if (AUTH_CODES.has(e.Code)) {
      $('mode').textContent = 'Signed API · not signed in';
      if (e.Code !== 'SignInRequired') showError(e);
      askForKey(e.Code === 'SignInRequired'
        ? 'This server requires signed requests (access keys are configured).'
        : 'The server refused this key.');
      return;
    }
    $('mode').textContent = 'Not connected';
    showError(e);
    setState('error');
    return;
  }
  const wanted = q.get('instance');
  if (wanted && !server.Instances.some((i) => i.Name === wanted)) {
    showError(vendorError('InvalidInstance', 'there is no instance named "' + wanted + '"'));
    setState('error');
    return;
  }
  selectInstance(wanted || (server.Instances[0] && server.Instances[0].Name) || '');
  setState('ready');
  if (q.get('product') && q.get('pic')) searchByName(q.get('product'), q.get('pic'));
}


start();
