// imgsearch console: lists the instances, searches by picture (SearchImageByPic) or by
// a stored picture (SearchImageByName) through the same API every client uses, and
// shows the results with their stored thumbnails. Plain JavaScript, no dependencies.
//
// State for tests and tools: <main data-state> is loading | ready | searching | done |
// error; #results carries data-count; each thumbnail <img> gets data-loaded="1" once it
// has decoded (naturalWidth > 0), "missing" when the server has none.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const app = $('app');

  /** Server settings and the instances, from /console/api/instances. */
  let server = { Instances: [], SignedRequests: false, ThumbnailSize: 0 };
  /** The last search, to run again with other options: {kind: 'pic', content, preview} or {kind: 'name', product, pic}. */
  let last = null;
  /** Object URLs to release when the query picture changes. */
  let queryUrls = [];
  /** Numbers each search so that a slow reply cannot overwrite a newer one. */
  let generation = 0;

  /** Creates an element; children are nodes or strings (always inserted as text). */
  function el(tag, attrs, ...children) {
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

  function setState(state) {
    app.dataset.state = state;
  }

  // ---- errors ------------------------------------------------------------------------

  /** An error in the vendor's shape (Code, Message, RequestId). */
  function vendorError(code, message, requestId) {
    return { Code: code, Message: message, RequestId: requestId };
  }

  function showError(error) {
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

  function clearError() {
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
      throw vendorError(code, message, body && body.RequestId);
    }
    return body;
  }

  // ---- API calls -----------------------------------------------------------------------

  /** POSTs an Action with form parameters, like any client of the API. */
  async function callAction(action, params) {
    const form = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') form.append(name, value);
    }
    let response;
    try {
      response = await fetch('/?Action=' + encodeURIComponent(action), { method: 'POST', body: form });
    } catch (e) {
      throw vendorError('NetworkError', 'the server could not be reached: ' + e.message);
    }
    return readReply(response);
  }

  async function loadInstances() {
    let response;
    try {
      response = await fetch('/console/api/instances', { cache: 'no-store' });
    } catch (e) {
      throw vendorError('NetworkError', 'the server could not be reached: ' + e.message);
    }
    server = await readReply(response);
    renderInstances();
    renderMode();
  }

  function thumbnailUrl(instance, product, pic) {
    const q = new URLSearchParams({ instance, product, pic });
    return '/console/thumbnail?' + q.toString();
  }

  // ---- instances -------------------------------------------------------------------------

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
        el('td', { class: 'num' }, inst.Qps));
      row.addEventListener('click', () => selectInstance(inst.Name));
      body.append(row);
      select.append(el('option', { value: inst.Name }, inst.Name));
    }
    if (chosen) select.value = chosen;
    markSelected();
  }

  function selectInstance(name) {
    $('instance').value = name;
    markSelected();
  }

  function markSelected() {
    const name = $('instance').value;
    for (const row of $('instances').tBodies[0].rows) {
      row.classList.toggle('selected', row.dataset.name === name);
    }
  }

  function renderMode() {
    const notice = $('notice');
    const lines = [];
    if (server.SignedRequests) {
      $('mode').textContent = 'Signed API · this console answers only clients on this machine';
      lines.push('This server requires signed requests (access keys are configured). The console ' +
        'answers only loopback clients, and the searches it sends are not signed, so the server ' +
        'refuses them (expect a signature error below). To search from the console, start a ' +
        'server without access keys on 127.0.0.1 and open its /console.');
    } else {
      $('mode').textContent = 'Open API on a loopback address · searches go to /?Action=…';
    }
    if (!server.ThumbnailSize) {
      lines.push('Thumbnails are off (--thumbnail-size 0): pictures added now get no preview.');
    }
    notice.replaceChildren(...lines.map((line) => el('p', null, line)));
    notice.hidden = lines.length === 0;
  }

  // ---- searching ---------------------------------------------------------------------------

  /** Parameters every search shares, from the form. */
  function searchOptions() {
    return {
      InstanceName: $('instance').value,
      Num: $('num').value,
      Filter: $('filter').value.trim(),
      DistinctProductId: $('distinct').checked ? 'true' : '',
    };
  }

  /** Reads a file as base64 (PicContent). */
  function readBase64(file) {
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

  async function searchByFile(file) {
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

  function searchByName(product, pic) {
    last = { kind: 'name', product, pic };
    run();
  }

  /** Runs `last` with the form's current options. */
  async function run() {
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
      showError(e.Code ? e : vendorError('Error', String(e && e.message ? e.message : e)));
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
      attrs));
    const open = () => {
      window.scrollTo({ top: 0, behavior: 'smooth' });
      searchByName(a.ProductId, a.PicName);
    };
    card.addEventListener('click', open);
    card.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        open();
      }
    });
    return card;
  }

  // ---- wiring ------------------------------------------------------------------------------

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
    $('instance').addEventListener('change', markSelected);
    $('search-form').addEventListener('submit', (e) => {
      e.preventDefault();
      run();
    });
  }

  /** Applies `?instance=&product=&pic=&num=&filter=&distinct=` and runs that search. */
  async function start() {
    wire();
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
})();
