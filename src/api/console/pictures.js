// imgsearch console, pictures: adds chosen files or a dropped folder to the selected
// instance (AddImage with base64 content, a few at a time, with a progress bar and the
// failures' vendor Code and Message), and deletes a picture or a whole product from the
// results (DeleteImage), after a confirmation.
//
// Names follow the folder layout `imgsearch import` reads: ProductId is the folder holding
// the picture (the file stem for a loose file), PicName the file name.
//
// State for tests and tools: #add-status carries data-state (running | done), data-total,
// data-added, data-failed and data-skipped; each failure is an <li> with data-code,
// data-product and data-pic.

import {
  $, el, vendorError, showError, clearError, asVendorError, callAction, readBase64, confirmAction,
} from './common.js';
import { cardActions, refreshAfterDelete } from './search.js';
import { refreshInstances } from './instances.js';

/** Files taken as pictures, by extension (the formats the server decodes). */
const PICTURE = /\.(jpe?g|png|bmp|gif|webp|tiff?|ppm|pnm|pgm|pbm)$/i;
/** AddImage requests in flight at once: enough to overlap decoding with the network. */
const PARALLEL = 4;
/** Retries of a throttled AddImage (403 DeniedRequest with a wait) before it counts as failed. */
const THROTTLE_RETRIES = 50;

/** Whether an upload runs (a second one would mix up the progress). */
let uploading = false;

/**
 * `{file, product, pic}` for a file found at `path` (`a/b/x.jpg`, or empty for a loose
 * file); null for hidden files and what is not a picture.
 */
function naming(file, path) {
  const parts = String(path || file.name).split('/').filter(Boolean);
  const pic = parts[parts.length - 1] || file.name;
  if (pic.startsWith('.') || !PICTURE.test(pic)) return null;
  const product = parts.length > 1 ? parts[parts.length - 2] : pic.replace(/\.[^.]*$/, '');
  return { file, product, pic };
}

/** Pictures of a FileList from an input (a folder input sets webkitRelativePath). */
function fromFiles(files) {
  const list = [...files];
  const items = list.map((f) => naming(f, f.webkitRelativePath)).filter(Boolean);
  return { items, skipped: list.length - items.length };
}

/** Pictures under what was dropped: folders are walked (webkitGetAsEntry). */
function fromDrop(transfer) {
  // Entries must be taken while the drop event runs; the transfer is emptied after it.
  const entries = [...(transfer.items || [])]
    .filter((i) => i.kind === 'file')
    .map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null))
    .filter(Boolean);
  const files = [...transfer.files];
  if (!entries.length) return Promise.resolve(fromFiles(files));
  return walkEntries(entries);
}

async function walkEntries(entries) {
  const items = [];
  let skipped = 0;
  const walk = async (entry) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      const item = naming(file, entry.fullPath);
      if (item) items.push(item);
      else skipped++;
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      // readEntries gives a batch at a time, until an empty one.
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child);
      }
    }
  };
  for (const entry of entries) await walk(entry);
  return { items, skipped };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One AddImage; a throttled request waits as the server asks and is sent again. */
async function addOne(instance, item) {
  const content = await readBase64(item.file);
  for (let attempt = 0; ; attempt++) {
    try {
      return await callAction('AddImage', {
        InstanceName: instance,
        ProductId: item.product,
        PicName: item.pic,
        PicContent: content,
      });
    } catch (e) {
      if (e && e.Code === 'DeniedRequest' && e.RetryAfter && attempt < THROTTLE_RETRIES) {
        await sleep(e.RetryAfter);
        continue;
      }
      throw e;
    }
  }
}

/** Shows the progress of an upload. */
function showProgress(counts) {
  const status = $('add-status');
  for (const [name, value] of Object.entries(counts)) status.dataset[name] = String(value);
  const done = counts.added + counts.failed;
  const bar = $('add-progress');
  bar.max = Math.max(1, counts.total);
  bar.value = done;
  $('add-count').textContent = done + ' of ' + counts.total + ' sent · ' + counts.added + ' added'
    + (counts.failed ? ' · ' + counts.failed + ' failed' : '')
    + (counts.skipped ? ' · ' + counts.skipped + ' skipped (not pictures)' : '');
}

/** Sends `items` to the selected instance, PARALLEL at a time; failures are listed. */
async function upload({ items, skipped }) {
  const instance = $('instance').value;
  if (!instance) {
    showError(vendorError('InvalidInstance', 'choose or create an instance first'));
    return;
  }
  if (uploading) {
    showError(vendorError('Busy', 'pictures are still being added; wait until they are done'));
    return;
  }
  uploading = true;
  clearError();
  const status = $('add-status');
  const failures = $('add-failures');
  failures.replaceChildren();
  status.hidden = false;
  status.dataset.state = 'running';
  $('add-instance').textContent = instance;
  const counts = { total: items.length, added: 0, failed: 0, skipped };
  showProgress(counts);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await addOne(instance, item);
        counts.added++;
      } catch (e) {
        const error = asVendorError(e);
        counts.failed++;
        failures.append(el('li', { 'data-code': error.Code, 'data-product': item.product, 'data-pic': item.pic },
          el('span', { class: 'name' }, item.product + ' / ' + item.pic), ' ',
          el('span', { class: 'code' }, error.Code), ': ', error.Message));
      }
      showProgress(counts);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
    await refreshInstances();
  } finally {
    uploading = false;
    status.dataset.state = 'done';
  }
}

/** Asks, then deletes one picture (`pic`) or every picture of `product` (`pic` null). */
async function removeFromResults(instance, product, pic) {
  const text = pic === null
    ? 'Delete every picture of the product "' + product + '" from ' + instance + '?'
    : 'Delete the picture "' + pic + '" of the product "' + product + '" from ' + instance + '?';
  if (!(await confirmAction(text, pic === null ? 'Delete product' : 'Delete picture'))) return;
  clearError();
  const params = { InstanceName: instance, ProductId: product };
  if (pic !== null) params.PicName = pic;
  try {
    await callAction('DeleteImage', params);
  } catch (e) {
    showError(asVendorError(e));
    return;
  }
  refreshAfterDelete(instance, product, pic);
  refreshInstances();
}

/** Wires the file and folder inputs, the drop zone and the results' delete buttons. */
export function wirePictures() {
  cardActions.remove = removeFromResults;
  for (const id of ['add-files', 'add-folder']) {
    const input = $(id);
    input.addEventListener('change', () => {
      const picked = fromFiles(input.files);
      input.value = '';
      upload(picked);
    });
  }
  // The choosers are labels around hidden inputs: reachable by keyboard too.
  for (const label of document.querySelectorAll('.add-buttons label')) {
    label.tabIndex = 0;
    label.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        label.querySelector('input').click();
      }
    });
  }
  const drop = $('add-drop');
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
    // Marked handled, so the page-wide drop (which searches) leaves it alone.
    e.preventDefault();
    fromDrop(e.dataTransfer).then(upload, (err) => showError(asVendorError(err)));
  });
}
