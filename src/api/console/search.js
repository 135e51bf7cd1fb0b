// imgsearch console, searching: by picture (SearchImageByPic) or by a stored picture
// (SearchImageByName) through the same API every client uses; shows the query with its
// subject regions and the results with their stored thumbnails. A search by name is put
// in the address bar so that it can be shared as a link.
//
// State for tests and tools: <main data-state> is searching | done | error; #results
// carries data-count; each thumbnail <img> gets data-loaded="1" once it has decoded
// (naturalWidth > 0), "missing" when the server has none.

import {
  $, el, setState, vendorError, showError, clearError, asVendorError, callAction, thumbnailUrl, readBase64,
} from './common.js';

/** The last search, to run again with other options: {kind: 'pic', content, preview} or {kind: 'name', product, pic}. */
let last = null;
/** Object URLs to release when the query picture changes. */
let queryUrls = [];
/** Numbers each search so that a slow reply cannot overwrite a newer one. */
let generation = 0;

/** Parameters every search shares, from the form. */
function searchOptions() {
  return {
    InstanceName: $('instance').value,
    Num: $('num').value,
    Filter: $('filter').value.trim(),
    DistinctProductId: $('distinct').checked ? 'true' : '',
  };
}

/** Searches with a picture file (SearchImageByPic). */
export async function searchByFile(file) {
  if (!file) return;
  let content;
  try {
    content = await readBase64(file);
  } catch (e) {
    showError(e);
    setState('error');
    return;
  }
  releaseQueryUrls();
  const preview = URL.createObjectURL(file);
  queryUrls.push(preview);
  last = { kind: 'pic', content, preview, label: file.name };
  run();
}

/** Searches with a stored picture (SearchImageByName). */
export function searchByName(product, pic) {
  last = { kind: 'name', product, pic };
  run();
}

/** Runs the last search again with the form's current options. */
export async function run() {
  if (!last) {
    showError(vendorError('NoQuery', 'drop or choose a picture first, or click a result'));
    return;
  }
  const mine = ++generation;
  const options = searchOptions();
  const query = last;
  clearError();
  setState('searching');
  $('results-head').textContent = 'searching…';
  try {
    let reply;
    if (query.kind === 'pic') {
      reply = await callAction('SearchImageByPic', {
        ...options,
        PicContent: query.content,
        Crop: $('crop').checked ? 'true' : 'false',
      });
    } else {
      reply = await callAction('SearchImageByName', {
        ...options,
        ProductId: query.product,
        PicName: query.pic,
      });
    }
    if (mine !== generation) return;
    updateAddress(query, options);
    await renderQuery(query, reply, options.InstanceName);
    if (mine !== generation) return;
    renderResults(reply, options.InstanceName, query);
    setState('done');
  } catch (e) {
    if (mine !== generation) return;
    $('results-head').textContent = '';
    showError(asVendorError(e));
    setState('error');
  }
}

/** Puts a by-name search in the address bar (a shareable link); a picture cannot go there. */
function updateAddress(query, options) {
  const q = new URLSearchParams();
  q.set('instance', options.InstanceName);
  if (query.kind === 'name') {
    q.set('product', query.product);
    q.set('pic', query.pic);
  }
  if (options.Num !== '10') q.set('num', options.Num);
  if (options.Filter) q.set('filter', options.Filter);
  if (options.DistinctProductId) q.set('distinct', 'true');
  history.replaceState(null, '', '/console?' + q.toString());
}

// ---- the query picture -------------------------------------------------------------------

function releaseQueryUrls() {
  for (const url of queryUrls) URL.revokeObjectURL(url);
  queryUrls = [];
}

/** `x1,x2,y1,y2` → numbers, or null. */
function parseRegion(text) {
  const parts = String(text || '').split(',').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isFinite(n))) return null;
  const [x1, x2, y1, y2] = parts;
  return x2 > x1 && y2 > y1 ? { x1, x2, y1, y2 } : null;
}

/** Draws regions (source pixels) over a frame showing a `width`x`height` source. */
function drawRegions(frame, width, height, main, others) {
  const boxes = [[main, 'region main']].concat(others.map((r) => [r, 'region other']));
  for (const [text, cls] of boxes) {
    const r = parseRegion(text);
    if (!r || !width || !height) continue;
    const box = el('div', { class: cls, 'data-region': text, title: 'Region ' + text });
    box.style.left = (100 * r.x1 / width) + '%';
    box.style.top = (100 * r.y1 / height) + '%';
    box.style.width = (100 * (r.x2 - r.x1) / width) + '%';
    box.style.height = (100 * (r.y2 - r.y1) / height) + '%';
    frame.append(box);
  }
}

/** Resolves when an image has loaded (true) or failed (false). */
function loaded(img) {
  if (img.complete && img.naturalWidth > 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    img.addEventListener('load', () => resolve(img.naturalWidth > 0), { once: true });
    img.addEventListener('error', () => resolve(false), { once: true });
  });
}

/** Shows the query picture with its subject region, and what the reply says about it. */
async function renderQuery(query, reply, instance) {
  const info = reply.PicInfo || {};
  const figure = $('query-figure');
  figure.replaceChildren();
  const others = (info.MultiRegion || [])
    .map((m) => m.Region)
    .filter((r) => r && r !== info.Region);
  let source = null; // {url, width, height, thumbnail}
  if (query.kind === 'pic') {
    source = { url: query.preview, thumbnail: false };
  } else {
    try {
      const response = await fetch(thumbnailUrl(instance, query.product, query.pic));
      if (response.ok) {
        const size = (response.headers.get('x-imgsearch-source-size') || '').split('x').map(Number);
        const url = URL.createObjectURL(await response.blob());
        releaseQueryUrls();
        queryUrls.push(url);
        source = { url, width: size[0], height: size[1], thumbnail: true };
      }
    } catch (_) {
      source = null;
    }
  }
  let shown = false;
  if (source) {
    const img = el('img', { alt: 'Query picture', class: 'query-img' });
    const frame = el('div', { class: 'frame' }, img);
    img.src = source.url;
    figure.append(frame);
    if (await loaded(img)) {
      shown = true;
      img.dataset.loaded = '1';
      // Fit a 360x320 box; small thumbnails are enlarged so that the box stays visible.
      const scale = Math.min(360 / img.naturalWidth, 320 / img.naturalHeight, source.thumbnail ? 2 : 1);
      img.style.width = Math.round(img.naturalWidth * scale) + 'px';
      const width = source.width || img.naturalWidth;
      const height = source.height || img.naturalHeight;
      drawRegions(frame, width, height, info.Region, others);
    } else {
      frame.remove();
    }
  }
  if (!shown) {
    figure.append(el('div', { class: 'placeholder frame' },
      query.kind === 'pic'
        ? 'This browser cannot show this format; the server read it.'
        : 'No thumbnail stored for this picture.'));
  }
  figure.append(el('figcaption', null,
    query.kind === 'pic' ? query.label : query.product + ' / ' + query.pic,
    el('br'), 'Subject region (x1,x2,y1,y2): ' + (info.Region || 'none')));

  const categories = new Map((info.AllCategories || []).map((c) => [c.Id, c.Name]));
  const head = reply.Head || {};
  const rows = [
    ['Category', info.CategoryId === undefined ? '—'
      : (categories.get(info.CategoryId) || '') + ' (' + info.CategoryId + ')'],
    ['Region', info.Region || '—'],
    ['Other regions', others.length ? others.join('  ') : '—'],
    ['Found', head.DocsFound],
    ['Returned', head.DocsReturn],
    ['Search time', head.SearchTime + ' ms'],
    ['RequestId', reply.RequestId],
  ];
  const dl = $('query-info');
  dl.replaceChildren();
  for (const [name, value] of rows) dl.append(el('dt', null, name), el('dd', null, value));
  if (query.kind === 'name') {
    const link = el('a', { href: location.pathname + location.search, id: 'share-link' }, 'link to this search');
    dl.append(el('dt', null, 'Share'), el('dd', null, link));
  }
  $('query-kind').textContent = query.kind === 'pic' ? 'SearchImageByPic' : 'SearchImageByName';
  $('query-panel').hidden = false;
}

// ---- results ---------------------------------------------------------------------------

const ATTRIBUTES = ['IntAttr', 'IntAttr2', 'IntAttr3', 'IntAttr4',
  'StrAttr', 'StrAttr2', 'StrAttr3', 'StrAttr4', 'CustomContent'];

function renderResults(reply, instance, query) {
  const grid = $('results');
  const auctions = reply.Auctions || [];
  const categories = new Map(((reply.PicInfo || {}).AllCategories || []).map((c) => [c.Id, c.Name]));
  grid.replaceChildren();
  grid.dataset.count = String(auctions.length);
  const head = reply.Head || {};
  $('results-head').textContent = auctions.length + ' of ' + (head.DocsFound ?? auctions.length) + ' found';
  if (!auctions.length) {
    grid.append(el('p', { class: 'empty' }, 'No picture matches.'));
    return;
  }
  auctions.forEach((a, i) => grid.append(resultCard(a, i, instance, query, categories)));
}

function resultCard(a, index, instance, query, categories) {
  const img = el('img', { class: 'thumb', alt: a.ProductId + ' / ' + a.PicName, decoding: 'async' });
  const box = el('div', { class: 'thumb-box' }, img, el('span', { class: 'rank' }, '#' + (index + 1)));
  img.addEventListener('load', () => {
    img.dataset.loaded = img.naturalWidth > 0 ? '1' : 'empty';
  });
  img.addEventListener('error', () => {
    img.dataset.loaded = 'missing';
    img.hidden = true;
    box.append(el('span', { class: 'placeholder' }, 'no thumbnail'));
  });
  img.src = thumbnailUrl(instance, a.ProductId, a.PicName);

  const score = Number(a.Score);
  const bar = el('span');
  bar.style.width = Math.max(0, Math.min(1, score)) * 100 + '%';
  const attrs = el('dl', { class: 'attrs' });
  if (a.CategoryId !== undefined) {
    attrs.append(el('dt', null, 'Category'),
      el('dd', null, (categories.get(a.CategoryId) || a.CategoryId) + ''));
  }
  for (const name of ATTRIBUTES) {
    if (a[name] !== undefined && a[name] !== null) {
      attrs.append(el('dt', null, name), el('dd', { 'data-attr': name }, a[name]));
    }
  }
  const isQuery = query.kind === 'name' && query.product === a.ProductId && query.pic === a.PicName;
  const card = el('article', {
    class: 'result' + (isQuery ? ' is-query' : ''),
    tabindex: 0,
    title: 'Search with this picture',
    'data-product': a.ProductId,
    'data-pic': a.PicName,
    'data-score': String(a.Score),
  },
  box,
  el('div', { class: 'meta' },
    el('div', { class: 'score' }, Number.isFinite(score) ? score.toFixed(4) : String(a.Score),
      el('span', { class: 'bar' }, bar)),
    el('div', { class: 'product' }, a.ProductId),
    el('div', { class: 'pic' }, a.PicName),
    attrs,
    deleteButtons(a, instance)));
  const open = (e) => {
    if (e && e.target && e.target.closest('.card-actions')) return;
    window.scrollTo({ top: 0, behavior: 'smooth' });
    searchByName(a.ProductId, a.PicName);
  };
  card.addEventListener('click', open);
  card.addEventListener('keydown', (e) => {
    if ((e.key === 'Enter' || e.key === ' ') && e.target === card) {
      e.preventDefault();
      open();
    }
  });
  return card;
}


// ---- deleting from the results -------------------------------------------------------------

/** What a result card's delete buttons do: `(instance, product, pic | null) => Promise`, set by admin.js. */
export const cardActions = { remove: null };

/** The card's "delete picture" and "delete product" buttons (when deleting is wired). */
function deleteButtons(a, instance) {
  if (!cardActions.remove) return null;
  const button = (cls, label, title, pic) => {
    const b = el('button', { type: 'button', class: cls, title }, label);
    b.addEventListener('click', (e) => {
      e.stopPropagation();
      cardActions.remove(instance, a.ProductId, pic);
    });
    return b;
  };
  return el('div', { class: 'card-actions' },
    button('delete-pic', 'Delete picture', 'DeleteImage of this picture', a.PicName),
    button('delete-product', 'Delete product', 'DeleteImage of every picture of ' + a.ProductId, null));
}

/**
 * Shows the results without what was just deleted: the search runs again, unless it was
 * by a picture that is now gone (it would fail with PicNotExist): then its deleted cards
 * are taken out of the list.
 */
export function refreshAfterDelete(instance, product, pic) {
  const query = last;
  const gone = query && query.kind === 'name' && query.product === product && (pic === null || query.pic === pic);
  if (query && !gone) {
    run();
    return;
  }
  const grid = $('results');
  for (const card of [...grid.querySelectorAll('article.result')]) {
    if (card.dataset.product === product && (pic === null || card.dataset.pic === pic)) card.remove();
  }
  grid.dataset.count = String(grid.querySelectorAll('article.result').length);
  $('results-head').textContent = grid.dataset.count + ' shown (the query picture was deleted)';
  setState('done');
}

/** Empties the results (another instance was chosen, or this one was deleted). */
export function clearResults() {
  ++generation;
  last = null;
  releaseQueryUrls();
  $('query-panel').hidden = true;
  $('results').replaceChildren(el('p', { class: 'empty' }, 'Drop a picture to search.'));
  $('results').dataset.count = '0';
  $('results-head').textContent = '';
}
