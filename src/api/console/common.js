// imgsearch console, shared pieces: DOM helpers, the page state, vendor errors, and the
// calls every part makes (Actions to `/`, admin routes, the console's own data routes),
// signed when the server wants signatures.

import { signed } from './sign.js';

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** Server settings and the instances, from /console/api/instances (updated in place). */
export const server = { Instances: [], SignedRequests: false, ThumbnailSize: 0 };

/** Creates an element; children are nodes or strings (always inserted as text). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name.startsWith('data-')) node.dataset[toCamel(name.slice(5))] = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function toCamel(text) {
  return text.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

/** Sets `<main data-state>`, which tests and tools wait on. */
export function setState(state) {
  $('app').dataset.state = state;
}

// ---- errors ------------------------------------------------------------------------

/** An error in the vendor's shape (Code, Message, RequestId). */
export function vendorError(code, message, requestId) {
  return { Code: code, Message: message, RequestId: requestId };
}

/** Shows a vendor error (Code, Message, RequestId) above the results. */
export function showError(error) {
  const box = $('error');
  box.replaceChildren(
    el('span', { class: 'code' }, String(error.Code || 'Error')),
    ': ',
    el('span', { class: 'message' }, String(error.Message || 'something went wrong')),
    error.RequestId ? el('span', { class: 'request' }, 'RequestId ' + error.RequestId) : null,
  );
  box.dataset.code = String(error.Code || 'Error');
  box.hidden = false;
}

export function clearError() {
  $('error').hidden = true;
  $('error').replaceChildren();
}

/** Reads a JSON reply; a vendor error body (or a non-JSON failure) is thrown. */
async function readReply(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok || !body || (body.Success !== undefined && body.Success !== true)) {
    const code = body && body.Code ? body.Code : 'HTTP ' + response.status;
    const message = body && body.Message ? body.Message : response.statusText || 'the server gave no details';
    const error = vendorError(code, message, body && body.RequestId);
    // A throttled request says how long to wait (milliseconds), as the vendor's SDKs read it.
    const retry = Number(response.headers.get('x-acs-retry-after'));
    if (retry > 0) error.RetryAfter = retry;
    throw error;
  }
  return body;
}


/** An error thrown by code (not the server) in the vendor's shape. */
export function asVendorError(e) {
  return e && e.Code ? e : vendorError('Error', String(e && e.message ? e.message : e));
}

// ---- calls -------------------------------------------------------------------------------

/** POSTs to `path` a signed form; a transport failure becomes a vendor-shaped error. */
async function post(url, path, params) {
  const form = signed('POST', path, params);
  let response;
  try {
    response = await fetch(url, { method: 'POST', body: form });
  } catch (e) {
    throw vendorError('NetworkError', 'the server could not be reached: ' + e.message);
  }
  return readReply(response);
}

/** POSTs an Action with form parameters, like any client of the API. */
export function callAction(action, params) {
  return post('/?Action=' + encodeURIComponent(action), '/', Object.assign({ Action: action }, params));
}

/**
 * POSTs to an admin route (`/admin/...`) with form parameters; the server answers only
 * loopback clients and, with access keys, a key not limited to instances.
 */
export function callAdmin(path, params) {
  return post(path, path, params);
}

/** GETs one of the console's data routes with a signed query string. */
export async function getConsole(path, params) {
  const query = signed('GET', path, params || {}).toString();
  let response;
  try {
    response = await fetch(path + (query ? '?' + query : ''), { cache: 'no-store' });
  } catch (e) {
    throw vendorError('NetworkError', 'the server could not be reached: ' + e.message);
  }
  return readReply(response);
}

/** A thumbnail's URL, signed when the server wants signatures (a fresh nonce each time). */
export function thumbnailUrl(instance, product, pic) {
  const q = signed('GET', '/console/thumbnail', { instance, product, pic });
  return '/console/thumbnail?' + q.toString();
}

/** Reads a file as base64 (PicContent). */
export function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const text = String(reader.result);
      resolve(text.slice(text.indexOf(',') + 1));
    };
    reader.onerror = () => reject(vendorError('FileError', 'the file could not be read: ' + reader.error));
    reader.readAsDataURL(file);
  });
}

// ---- confirmation ------------------------------------------------------------------------

/**
 * Asks the operator to confirm `text` in the page's own dialog (not `window.confirm`, which
 * scripts and headless browsers cannot answer); resolves true when confirmed.
 */
export function confirmAction(text, button) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = button || 'Delete';
  // The buttons answer directly: a `close` event is queued, and one left over from the
  // previous question could otherwise answer this one. Plain buttons rather than
  // `<form method="dialog">`: the page's CSP has form-action 'none'.
  return new Promise((resolve) => {
    const answer = (ok) => {
      $('confirm-ok').onclick = null;
      $('confirm-cancel').onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(ok);
    };
    $('confirm-ok').onclick = () => answer(true);
    $('confirm-cancel').onclick = () => answer(false);
    dialog.showModal();
    // Escape closes the dialog without a button: that is a no. Set after showModal, so a
    // close event still queued from an earlier question finds the dialog open and is ignored.
    dialog.onclose = () => {
      if (!dialog.open) answer(false);
    };
  });
}
