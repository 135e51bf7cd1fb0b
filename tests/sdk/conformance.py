#!/usr/bin/env python3
"""SDK conformance harness for imgsearch.

Drives a running imgsearch server through the vendor's official Python SDKs and checks that
every operation answers as those SDKs expect (field names and JSON types of their models) and
that bad inputs fail with the exact error code and HTTP status of the API contract
(../shared/reference/API.md). The wire details it relies on are in docs/sdk-wire-format.md.

    python3 tests/sdk/conformance.py --endpoint 127.0.0.1:8080 \
        --access-key-id AK --access-key-secret SECRET --pictures data/demo [--only v3.search]

Clients used:
  v3   alibabacloud_imagesearch20201214 Client, default signing (ACS3-HMAC-SHA256)
  v1   the same Client with Config(signature_algorithm='v2')  (RPC signature V1, HMAC-SHA1)
  roa  aliyun-python-sdk-core AcsClient + aliyunsdkimagesearch 2019-03-25 requests

Only the instance `demoinstance` is used; everything the run adds carries ProductIds starting
with a run prefix and IntAttr = a run tag, and is deleted at the end (best effort).
Output: one line per check, `PASS name` or `FAIL name: reason` (`SKIP name: reason` for
optional checks whose prerequisites were not given), then `N passed, M failed`.
Exit status 0 only when nothing failed. Install the SDKs with tests/sdk/requirements.txt.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import io
import json
import logging
import os
import random
import re
import struct
import sys
import time
import traceback
import urllib.request
import zlib

try:
    from alibabacloud_imagesearch20201214 import models as M
    from alibabacloud_imagesearch20201214.client import Client as ImageSearchClient
    from alibabacloud_tea_openapi import exceptions as tea_exc
    from alibabacloud_tea_openapi import utils_models as open_api_models
    from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils
    from darabonba.runtime import RuntimeOptions
    from Tea.exceptions import TeaException
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.acs_exception.exceptions import ClientException as CoreClientException
    from aliyunsdkcore.acs_exception.exceptions import ServerException as CoreServerException
    from aliyunsdkimagesearch.request.v20190325.AddImageRequest import AddImageRequest as RoaAddImageRequest
    from aliyunsdkimagesearch.request.v20190325.SearchImageRequest import SearchImageRequest as RoaSearchImageRequest
    from aliyunsdkimagesearch.request.v20190325.DeleteImageRequest import DeleteImageRequest as RoaDeleteImageRequest
except ImportError as e:  # pragma: no cover
    sys.stderr.write('missing SDK package (%s); run: pip install -r tests/sdk/requirements.txt\n' % e)
    sys.exit(2)

INSTANCE = 'demoinstance'
REGION_ID = 'cn-shanghai'
PRODUCT_CATEGORIES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21, 22, 88888888}
INT32_MAX = 2 ** 31 - 1
INT32_MIN = -2 ** 31


class CheckFailed(Exception):
    pass


def ensure(cond, msg):
    if not cond:
        raise CheckFailed(msg)


# --------------------------------------------------------------------------------------------
# Pictures, made with the standard library only
# --------------------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)


def png_from_rgb(w: int, h: int, rgb: bytes, extra_chunks=(), level=6) -> bytes:
    stride = w * 3
    raw = b''.join(b'\x00' + rgb[y * stride:(y + 1) * stride] for y in range(h))
    out = b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
    for kind, data in extra_chunks:
        out += _png_chunk(kind, data)
    return out + _png_chunk(b'IDAT', zlib.compress(raw, level)) + _png_chunk(b'IEND', b'')


def bmp_from_rgb(w: int, h: int, rgb: bytes) -> bytes:
    row_len = (w * 3 + 3) & ~3
    rows = []
    for y in range(h - 1, -1, -1):  # bottom-up, BGR
        row = bytearray(rgb[y * w * 3:(y + 1) * w * 3])
        row[0::3], row[2::3] = row[2::3], row[0::3]
        rows.append(bytes(row) + b'\x00' * (row_len - w * 3))
    pixels = b''.join(rows)
    header = b'BM' + struct.pack('<IHHI', 54 + len(pixels), 0, 0, 54)
    info = struct.pack('<IiiHHIIiiII', 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def ppm_from_rgb(w: int, h: int, rgb: bytes) -> bytes:
    return b'P6\n%d %d\n255\n' % (w, h) + rgb


def draw_rgb(w: int, h: int, seed: int) -> bytes:
    """A background and a few seeded random rectangles, discs and stripes."""
    rnd = random.Random(seed)
    bg = bytes(rnd.randrange(256) for _ in range(3))
    buf = bytearray(bg * (w * h))
    for _ in range(rnd.randint(4, 8)):
        color = bytes(rnd.randrange(256) for _ in range(3))
        kind = rnd.choice(('rect', 'disc', 'stripe'))
        if kind == 'rect':
            x0, y0 = rnd.randrange(w - 10), rnd.randrange(h - 10)
            x1, y1 = rnd.randint(x0 + 5, min(w, x0 + w // 2)), rnd.randint(y0 + 5, min(h, y0 + h // 2))
            for y in range(y0, y1):
                buf[(y * w + x0) * 3:(y * w + x1) * 3] = color * (x1 - x0)
        elif kind == 'disc':
            cx, cy, r = rnd.randrange(w), rnd.randrange(h), rnd.randint(8, max(9, min(w, h) // 3))
            for y in range(max(0, cy - r), min(h, cy + r)):
                dx = int((r * r - (y - cy) ** 2) ** 0.5)
                x0, x1 = max(0, cx - dx), min(w, cx + dx)
                if x1 > x0:
                    buf[(y * w + x0) * 3:(y * w + x1) * 3] = color * (x1 - x0)
        else:
            period, width = rnd.randint(8, 30), rnd.randint(2, 6)
            for y in range(h):
                for x0 in range((y // 2) % period, w, period):
                    x1 = min(w, x0 + width)
                    buf[(y * w + x0) * 3:(y * w + x1) * 3] = color * (x1 - x0)
    return bytes(buf)


def make_png(seed: int, w: int = 200, h: int = 160, extra_chunks=()) -> bytes:
    return png_from_rgb(w, h, draw_rgb(w, h, seed), extra_chunks)


def exif_orientation_tiff(orientation: int = 6) -> bytes:
    # Big-endian TIFF header, one IFD with one entry: 0x0112 Orientation, SHORT, count 1.
    return (b'MM\x00\x2a' + struct.pack('>I', 8) + struct.pack('>H', 1)
            + struct.pack('>HHIHH', 0x0112, 3, 1, orientation, 0) + struct.pack('>I', 0))


def jpeg_with_orientation(jpeg: bytes, orientation: int = 6) -> bytes:
    payload = b'Exif\x00\x00' + exif_orientation_tiff(orientation)
    app1 = b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode('ascii')


# --------------------------------------------------------------------------------------------
# Response schemas, from the SDK models (alibabacloud_imagesearch20201214 4.4.0, from_map +
# type annotations). A key ending in '?' is optional; float accepts any JSON number.
# --------------------------------------------------------------------------------------------

CATEGORY = {'Id': int, 'Name': str}
PIC_INFO = {'CategoryId': int, 'Region': str, 'AllCategories': [CATEGORY], 'MultiRegion?': [{'Region': str}]}
ATTRS = {'CustomContent?': str, 'IntAttr?': int, 'IntAttr2?': int, 'IntAttr3?': int, 'IntAttr4?': int,
         'StrAttr?': str, 'StrAttr2?': str, 'StrAttr3?': str, 'StrAttr4?': str}
AUCTION = dict({'ProductId': str, 'PicName': str, 'CategoryId': int, 'Score': float, 'SortExprValues': str}, **ATTRS)
FILTER_AUCTION = dict({'ProductId': str, 'PicName': str, 'CategoryId': int}, **ATTRS)
OK = {'RequestId': str, 'Success': bool, 'Code': int}
HEAD = {'DocsFound': int, 'DocsReturn': int, 'SearchTime': int}

SCHEMAS = {
    'AddImage': dict(OK, **{'Message?': str, 'PicInfo': PIC_INFO}),
    'SearchImageByPic': dict(OK, **{'Msg': str, 'Head': HEAD, 'PicInfo': PIC_INFO, 'Auctions': [AUCTION]}),
    'SearchImageByName': dict(OK, **{'Msg': str, 'Head': HEAD, 'PicInfo?': PIC_INFO, 'Auctions': [AUCTION]}),
    'SearchImageByFilter': dict(OK, **{'Msg?': str, 'Auctions': [FILTER_AUCTION]}),
    'DeleteImage': dict(OK, **{'Message?': str, 'Data': {'PicNames': [str]}}),
    'UpdateImage': dict(OK, **{'Message?': str}),
    'CheckImageExists': dict(OK, **{'Msg?': str, 'Exists': bool, 'Auctions?': FILTER_AUCTION}),
    'CompareSimilarByImage': dict(OK, **{'Msg?': str, 'Score': float}),
    'Detail': {'RequestId': str, 'Success': bool, 'Instance': {
        'Name': str, 'Region': str, 'ServiceType': int, 'Capacity': int, 'Qps': int, 'TotalCount': int,
        'UtcCreate': str, 'UtcExpireTime': str}},
    'DumpMeta': {'RequestId': str, 'Success': bool, 'Data': {'Id': str, 'DumpMetaStatus': str}},
    'DumpMetaList': {'RequestId': str, 'Data': {'PageNumber': int, 'PageSize': int, 'TotalCount': int,
                                                'DumpMetaList': [{'Id': int, 'Status': str, 'Code?': str, 'Msg?': str,
                                                                  'MetaUrl?': str, 'UtcCreate': str, 'UtcModified?': int}]}},
    'IncreaseInstance': {'RequestId': str, 'Success': bool, 'Data': {'Id': str, 'IncrementStatus': str}},
    'IncreaseList': {'RequestId': str, 'Data': {'PageNumber': int, 'PageSize': int, 'TotalCount': int, 'Increments': {
        'Instance': [{'Id': int, 'BucketName': str, 'Path': str, 'CallbackAddress?': str, 'Status': str, 'Code?': str,
                      'Msg?': str, 'ErrorUrl?': str, 'UtcCreate': str, 'UtcModified?': int}]}}},
}
ERROR_KEYS = ('RequestId', 'HostId', 'Code', 'Message', 'Recommend')


def type_name(v):
    return type(v).__name__ if v is not None else 'null'


def check_type(value, spec, path, errors):
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            errors.append('%s: expected object, got %s' % (path, type_name(value)))
            return
        for key, sub in spec.items():
            optional = key.endswith('?')
            name = key.rstrip('?')
            if name not in value or value[name] is None:
                if not optional:
                    errors.append('%s.%s: missing' % (path, name))
                continue
            check_type(value[name], sub, '%s.%s' % (path, name), errors)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            errors.append('%s: expected array, got %s' % (path, type_name(value)))
            return
        for i, item in enumerate(value):
            check_type(item, spec[0], '%s[%d]' % (path, i), errors)
    elif spec is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append('%s: expected number, got %s %r' % (path, type_name(value), value))
    elif spec is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append('%s: expected integer, got %s %r' % (path, type_name(value), value))
    elif not isinstance(value, spec):
        errors.append('%s: expected %s, got %s %r' % (path, spec.__name__, type_name(value), value))


def validate(action, raw, schema=None):
    errors = []
    check_type(raw, schema or SCHEMAS[action], action, errors)
    ensure(not errors, '; '.join(errors[:6]) + (' ...' if len(errors) > 6 else ''))


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

class Rpc:
    """One new-SDK client (V3 or V1 signing) that keeps the raw JSON of the last answer."""

    def __init__(self, endpoint, ak, secret, v1=False, timeout_ms=120000):
        kw = dict(access_key_id=ak, access_key_secret=secret, endpoint=endpoint, protocol='http',
                  region_id=REGION_ID, read_timeout=timeout_ms, connect_timeout=10000)
        if v1:
            kw['signature_algorithm'] = 'v2'
        self.client = ImageSearchClient(open_api_models.Config(**kw))
        self.last_raw = None
        original = self.client.call_api

        def recording_call_api(params, request, runtime):
            self.last_raw = None
            result = original(params, request, runtime)
            self.last_raw = result.get('body') if isinstance(result, dict) else None
            return result
        self.client.call_api = recording_call_api

    def call(self, action, **fields):
        """Calls the SDK method for `action` with a request model built from `fields`.

        Returns (response model, raw JSON body). Retries while the server throttles."""
        method = re.sub(r'(?<!^)(?=[A-Z])', '_', action).lower()
        request = getattr(M, action + 'Request')(**fields)
        fn = getattr(self.client, method + '_with_options')
        for attempt in range(40):
            try:
                resp = fn(request, RuntimeOptions())
                break
            except tea_exc.ThrottlingException as e:
                time.sleep(min(max((e.retry_after or 500) / 1000.0, 0.2), 2.0))
            except TeaException as e:
                if getattr(e, 'code', None) == 'DeniedRequest' and attempt < 39:
                    time.sleep(0.5)
                    continue
                raise
        else:
            raise CheckFailed('still throttled (DeniedRequest) after 40 attempts')
        ensure(resp is not None and resp.body is not None,
               'the SDK model could not parse the body (from_map failed): %r' % (self.last_raw,))
        ensure(resp.status_code == 200, 'HTTP %s on success' % resp.status_code)
        return resp, self.last_raw

    def ok(self, action, **fields):
        """Calls, validates the schema and Success/Code; returns the raw JSON body."""
        _, raw = self.call(action, **fields)
        validate(action, raw)
        ensure(raw.get('Success') is True, 'Success is %r' % raw.get('Success'))
        if 'Code' in SCHEMAS[action]:
            ensure(raw.get('Code') == 0, 'Code is %r, expected integer 0' % raw.get('Code'))
        return raw

    def expect_error(self, status, code, action, **fields):
        try:
            _, raw = self.call(action, **fields)
        except tea_exc.ThrottlingException as e:
            raise CheckFailed('throttled: %s %s' % (e.code, e.message))
        except (tea_exc.ClientException, tea_exc.ServerException) as e:
            got_status = getattr(e, 'status_code', None)
            ensure(e.code == code and got_status == status,
                   'got %s %s (%s), expected %s %s' % (got_status, e.code, e.message, status, code))
            ensure(getattr(e, 'statusCode', None) == status, 'exception.statusCode is %r' % getattr(e, 'statusCode', None))
            want_cls = tea_exc.ClientException if status < 500 else tea_exc.ServerException
            ensure(isinstance(e, want_cls), 'raised %s, expected %s' % (type(e).__name__, want_cls.__name__))
            data = e.data if isinstance(e.data, dict) else {}
            missing = [k for k in ERROR_KEYS if k not in data]
            ensure(not missing, 'error body lacks %s: %r' % (missing, data))
            ensure(isinstance(data.get('RequestId'), str) and data['RequestId'], 'error RequestId %r' % data.get('RequestId'))
            ensure(isinstance(data.get('Message'), str), 'error Message %r' % data.get('Message'))
            return e
        except TeaException as e:
            inner = getattr(e, 'inner_exception', None)
            raise CheckFailed('SDK raised %s (%s), not a service error; expected %s %s'
                              % (type(e).__name__, inner or e.message, status, code))
        raise CheckFailed('succeeded (%s), expected %s %s' % (json.dumps(raw)[:200], status, code))


class Roa:
    def __init__(self, endpoint, ak, secret, timeout_s=120):
        self.client = AcsClient(ak, secret, REGION_ID, timeout=timeout_s, connect_timeout=10)
        self.client.add_endpoint(REGION_ID, 'imagesearch', endpoint)

    def do(self, request):
        for attempt in range(40):
            try:
                body = self.client.do_action_with_exception(request)
            except CoreServerException as e:
                if e.get_error_code() == 'DeniedRequest' and attempt < 39:
                    time.sleep(0.5)
                    continue
                raise
            try:
                return json.loads(body.decode('utf-8'))
            except ValueError:
                raise CheckFailed('non-JSON success body: %r' % body[:200])
        raise CheckFailed('still throttled')

    def expect_error(self, status, code, request):
        try:
            raw = self.do(request)
        except CoreServerException as e:
            ensure(e.get_error_code() == code and e.get_http_status() == status,
                   'got %s %s (%s), expected %s %s' % (e.get_http_status(), e.get_error_code(), e.get_error_msg(), status, code))
            ensure(e.get_request_id(), 'no RequestId in the error body')
            return e
        except CoreClientException as e:
            raise CheckFailed('SDK ClientException %s: %s' % (e.get_error_code(), e.get_error_msg()))
        except IndexError:
            raise CheckFailed('aliyunsdkcore crashed with IndexError: a SignatureDoesNotMatch Message must contain ":"')
        raise CheckFailed('succeeded (%s), expected %s %s' % (json.dumps(raw)[:200], status, code))


@contextlib.contextmanager
def patched(obj, name, value):
    old = obj.__dict__[name]
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


# --------------------------------------------------------------------------------------------
# The run context: clients, pictures, and the lazily added catalogue
# --------------------------------------------------------------------------------------------

class Ctx:
    def __init__(self, args):
        self.args = args
        ep, ak, sk = args.endpoint, args.access_key_id, args.access_key_secret
        self.v3 = Rpc(ep, ak, sk)
        self.v1 = Rpc(ep, ak, sk, v1=True)
        self.roa = Roa(ep, ak, sk)
        self.run = '%x' % (int(time.time() * 1000) % 0xffffffffff) + '%02x' % random.randrange(256)
        self.prefix = 'conf%s' % self.run
        self.tag = random.randrange(10 ** 8, 2 * 10 ** 9)  # IntAttr of everything this run adds
        self.products = set()
        self.pics = {k: make_png(seed) for k, seed in (('a', 101), ('b1', 202), ('b2', 303), ('c', 404),
                                                       ('r', 505), ('x', 606), ('v1', 707), ('roa', 808))}
        self.dir_pictures = []
        if args.pictures and os.path.isdir(args.pictures):
            for name in sorted(os.listdir(args.pictures)):
                if name.lower().rsplit('.', 1)[-1] in ('png', 'jpg', 'jpeg', 'bmp', 'gif', 'webp', 'tif', 'tiff', 'ppm'):
                    with open(os.path.join(args.pictures, name), 'rb') as f:
                        self.dir_pictures.append((name, f.read()))
        self._catalog = None
        self._catalog_error = None

    def pid(self, suffix):
        p = '%s-%s' % (self.prefix, suffix)
        self.products.add(p)
        return p

    def add(self, client, product, pic_name, data, **fields):
        self.products.add(product)
        return client.ok('AddImage', instance_name=INSTANCE, product_id=product, pic_name=pic_name,
                         pic_content=b64(data), **fields)

    def catalog(self):
        """Adds the shared pictures once (through V3) and returns their description."""
        if self._catalog is not None:
            return self._catalog
        if self._catalog_error:
            raise CheckFailed('catalogue setup failed earlier: ' + self._catalog_error)
        try:
            t = self.tag
            cat = {
                'a': dict(product=self.pid('a'), pic='a.png', fields=dict(
                    category_id=0, int_attr=t, int_attr_2=1, int_attr_3=3, int_attr_4=-4, str_attr='red',
                    str_attr_2='s2', str_attr_3='s3 x', str_attr_4='s4', custom_content='custom A')),
                'b1': dict(product=self.pid('b'), pic='b1.png', fields=dict(category_id=0, int_attr=t, int_attr_2=2, str_attr='blue')),
                'b2': dict(product=self.pid('b'), pic='b2.png', fields=dict(category_id=0, int_attr=t, int_attr_2=3, str_attr='blue')),
                'c': dict(product=self.pid('c'), pic='c.png', fields=dict(category_id=0, int_attr=t, int_attr_2=4,
                                                                           str_attr='green', str_attr_2='keep me')),
            }
            for key, item in cat.items():
                self.add(self.v3, item['product'], item['pic'], self.pics[key], **item['fields'])
            for i, (name, data) in enumerate(self.dir_pictures[:6]):
                self.add(self.v3, self.pid('dir%d' % i), name, data, int_attr=t, int_attr_2=100 + i, str_attr='dir')
            self._catalog = cat
            return cat
        except Exception as e:  # noqa
            self._catalog_error = describe(e)
            raise CheckFailed('catalogue setup failed: ' + self._catalog_error)

    def search(self, client=None, data=None, **fields):
        # The catalogue is all in category 0: give it, so that the prediction cannot split the results.
        fields.setdefault('category_id', 0)
        fields.setdefault('filter', 'int_attr=%d' % self.tag)
        fields.setdefault('num', 100)
        fields = {k: v for k, v in fields.items() if v is not None}
        return (client or self.v3).ok('SearchImageByPic', instance_name=INSTANCE,
                                      pic_content=b64(data if data is not None else self.pics['a']), **fields)


def describe(e):
    if isinstance(e, CheckFailed):
        return str(e)
    if isinstance(e, TeaException):
        inner = getattr(e, 'inner_exception', None)
        return '%s %s %s' % (type(e).__name__, getattr(e, 'code', ''), inner or getattr(e, 'message', ''))
    if isinstance(e, (CoreServerException, CoreClientException)):
        return '%s %s %s' % (type(e).__name__, e.get_error_code(), e.get_error_msg())
    return '%s: %s' % (type(e).__name__, e)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

CHECKS = []


def check(name):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn
    return deco


def hit(raw, product, pic):
    for a in raw.get('Auctions') or []:
        if a.get('ProductId') == product and a.get('PicName') == pic:
            return a
    return None


# ---- Detail and the shape of success answers -------------------------------------------------

@check('v3.detail')
def _(c):
    raw = c.v3.ok('Detail', instance_name=INSTANCE)
    inst = raw['Instance']
    ensure(inst['Name'] == INSTANCE, 'Instance.Name %r' % inst['Name'])
    ensure(inst['ServiceType'] == 0, 'demoinstance must be a product instance (ServiceType 0), got %r' % inst['ServiceType'])
    # 0 = unlimited, the default of a self-hosted instance (the vendor's tiers are opt-in).
    ensure(isinstance(inst['Qps'], int) and inst['Qps'] >= 0, 'Qps %r' % inst['Qps'])
    ensure(inst['TotalCount'] >= 0 and inst['Capacity'] > 0, 'TotalCount/Capacity %r/%r' % (inst['TotalCount'], inst['Capacity']))


@check('v3.add.all_params')
def _(c):
    cat = c.catalog()
    raw = c.add(c.v3, c.pid('all'), 'all.png', c.pics['x'], category_id=3, crop=True, region='10,150,20,140',
                custom_content='all params', int_attr=c.tag + 1, int_attr_2=2, int_attr_3=3, int_attr_4=4,
                str_attr='s1', str_attr_2='s2', str_attr_3='s3', str_attr_4='s4')
    ensure(raw['PicInfo']['CategoryId'] == 3, 'PicInfo.CategoryId %r, expected the given 3' % raw['PicInfo']['CategoryId'])
    ensure(raw['PicInfo']['Region'] == '10,150,20,140', 'PicInfo.Region %r, expected the given region' % raw['PicInfo']['Region'])
    a = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=c.pid('all'), pic_name='all.png').get('Auctions') or {}
    ensure(a.get('CategoryId') == 3 and a.get('IntAttr4') == 4 and a.get('StrAttr4') == 's4', 'stored as %r' % a)
    ensure(cat is not None, 'no catalogue')


@check('v3.add.picinfo')
def _(c):
    raw = c.add(c.v3, c.pid('pred'), 'pred.png', c.pics['r'])
    info = raw['PicInfo']
    ensure(info['CategoryId'] in PRODUCT_CATEGORIES, 'predicted CategoryId %r not a product category' % info['CategoryId'])
    ensure(re.fullmatch(r'\d+,\d+,\d+,\d+', info['Region']), 'Region %r not x1,x2,y1,y2' % info['Region'])
    x1, x2, y1, y2 = map(int, info['Region'].split(','))
    ensure(x1 < x2 <= 200 and y1 < y2 <= 160, 'Region %r outside the 200x160 picture or not ordered x1,x2,y1,y2' % info['Region'])
    ids = {cat['Id'] for cat in info['AllCategories']}
    ensure(ids == PRODUCT_CATEGORIES, 'AllCategories ids %s' % sorted(ids))
    for m in info.get('MultiRegion') or []:
        ensure(re.fullmatch(r'\d+,\d+,\d+,\d+', m['Region']), 'MultiRegion %r' % m)


@check('v3.add.special_chars_roundtrip')
def _(c):
    product = c.pid('sp é+&=/~*% "q"')
    pic = 'p ü+&=/~*%.png'
    c.add(c.v3, product, pic, c.pics['r'], int_attr=c.tag + 2, str_attr='a b+c/d~e*f', custom_content='x=1&y=2 %41 +')
    raw = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=product, pic_name=pic)
    ensure(raw['Exists'] is True, 'Exists %r' % raw['Exists'])
    a = raw.get('Auctions') or {}
    ensure(a.get('ProductId') == product and a.get('PicName') == pic, 'keys came back as %r / %r' % (a.get('ProductId'), a.get('PicName')))
    ensure(a.get('StrAttr') == 'a b+c/d~e*f', 'StrAttr %r' % a.get('StrAttr'))
    ensure(a.get('CustomContent') == 'x=1&y=2 %41 +', 'CustomContent %r' % a.get('CustomContent'))


@check('v3.add.int_attr_bounds')
def _(c):
    product = c.pid('bounds')
    c.add(c.v3, product, 'b.png', c.pics['r'], int_attr=INT32_MAX, int_attr_2=INT32_MIN, int_attr_3=0, int_attr_4=-1)
    a = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=product, pic_name='b.png').get('Auctions') or {}
    got = [a.get(k) for k in ('IntAttr', 'IntAttr2', 'IntAttr3', 'IntAttr4')]
    ensure(got == [INT32_MAX, INT32_MIN, 0, -1], 'IntAttr..4 came back as %r' % got)


@check('v3.add.max_lengths')
def _(c):
    product = c.pid('L' * (256 - len(c.prefix) - 1))  # exactly 256 characters
    pic = 'N' * 256
    c.add(c.v3, product, pic, c.pics['r'], custom_content='C' * 4096, str_attr='S' * 128, int_attr=c.tag + 2)
    a = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=product, pic_name=pic).get('Auctions') or {}
    ensure(a.get('CustomContent') == 'C' * 4096 and a.get('StrAttr') == 'S' * 128, 'long values not stored intact')


@check('v3.add.replace_same_key')
def _(c):
    product = c.pid('replace')
    c.add(c.v3, product, 'r.png', c.pics['r'], int_attr=c.tag + 3, str_attr='first')
    c.add(c.v3, product, 'r.png', c.pics['r'], int_attr=c.tag + 3, str_attr='second')
    raw = c.v3.ok('SearchImageByFilter', instance_name=INSTANCE, filter='int_attr=%d' % (c.tag + 3), num=100)
    mine = [a for a in raw['Auctions'] if a['ProductId'] == product]
    ensure(len(mine) == 1, 'the (ProductId, PicName) pair is stored %d times' % len(mine))
    ensure(mine[0].get('StrAttr') == 'second', 'StrAttr %r, expected the replacement' % mine[0].get('StrAttr'))


@check('v3.add.size_100x100')
def _(c):
    c.add(c.v3, c.pid('s100'), 's.png', make_png(9, 100, 100), int_attr=c.tag + 2)


@check('v3.add.size_4096x120')
def _(c):
    c.add(c.v3, c.pid('s4096'), 's.png', make_png(10, 4096, 120), int_attr=c.tag + 2)


@check('v3.add.bmp')
def _(c):
    c.add(c.v3, c.pid('bmp'), 'p.bmp', bmp_from_rgb(200, 160, draw_rgb(200, 160, 11)), int_attr=c.tag + 2)


@check('v3.add.ppm')
def _(c):
    c.add(c.v3, c.pid('ppm'), 'p.ppm', ppm_from_rgb(200, 160, draw_rgb(200, 160, 12)), int_attr=c.tag + 2)


@check('v3.add.pictures_dir')
def _(c):
    ensure(c.dir_pictures, 'no pictures found in --pictures %s' % c.args.pictures)
    c.catalog()  # adds them


# ---- SearchImageByPic --------------------------------------------------------------------------

@check('v3.search.identical_first')
def _(c):
    cat = c.catalog()
    raw = c.search()
    ensure(raw['Auctions'], 'no Auctions')
    top = raw['Auctions'][0]
    ensure((top['ProductId'], top['PicName']) == (cat['a']['product'], 'a.png'),
           'first hit %r/%r, expected the identical picture' % (top['ProductId'], top['PicName']))
    ensure(0.99 <= top['Score'] <= 1.0, 'Score of the identical picture %r' % top['Score'])


@check('v3.search.attributes_roundtrip')
def _(c):
    cat = c.catalog()
    a = hit(c.search(), cat['a']['product'], 'a.png')
    ensure(a, 'picture a not found')
    want = dict(CategoryId=0, IntAttr=c.tag, IntAttr2=1, IntAttr3=3, IntAttr4=-4, StrAttr='red', StrAttr2='s2',
                StrAttr3='s3 x', StrAttr4='s4', CustomContent='custom A')
    bad = {k: a.get(k) for k, v in want.items() if a.get(k) != v}
    ensure(not bad, 'stored attributes came back different: %r' % bad)


@check('v3.search.head_and_scores')
def _(c):
    c.catalog()
    raw = c.search()
    head, auctions = raw['Head'], raw['Auctions']
    ensure(head['DocsReturn'] == len(auctions), 'Head.DocsReturn %r != %d Auctions' % (head['DocsReturn'], len(auctions)))
    ensure(head['DocsFound'] >= head['DocsReturn'], 'DocsFound %r < DocsReturn %r' % (head['DocsFound'], head['DocsReturn']))
    ensure(head['SearchTime'] >= 0, 'SearchTime %r' % head['SearchTime'])
    scores = [a['Score'] for a in auctions]
    ensure(all(0.0 <= s <= 1.0 for s in scores), 'Score outside 0..1: %r' % scores)
    ensure(scores == sorted(scores, reverse=True), 'Auctions not sorted by Score: %r' % scores)
    for a in auctions:
        ensure(re.fullmatch(r'[^;]+;0', a['SortExprValues']), 'SortExprValues %r not "<relevance>;0"' % a['SortExprValues'])
    ensure(raw['Msg'] == 'success', 'Msg %r' % raw['Msg'])


@check('v3.search.picinfo')
def _(c):
    c.catalog()
    info = c.search(category_id=None)['PicInfo']
    ensure(info['CategoryId'] in PRODUCT_CATEGORIES, 'CategoryId %r' % info['CategoryId'])
    ensure({x['Id'] for x in info['AllCategories']} == PRODUCT_CATEGORIES, 'AllCategories %r' % info['AllCategories'])
    ensure(re.fullmatch(r'\d+,\d+,\d+,\d+', info['Region']), 'Region %r' % info['Region'])


@check('v3.search.num')
def _(c):
    c.catalog()
    raw = c.search(num=2)
    ensure(len(raw['Auctions']) == 2, '%d Auctions for Num=2' % len(raw['Auctions']))


@check('v3.search.default_num_10')
def _(c):
    c.catalog()
    raw = c.v3.ok('SearchImageByPic', instance_name=INSTANCE, pic_content=b64(c.pics['a']))
    ensure(len(raw['Auctions']) <= 10, '%d Auctions without Num (default 10)' % len(raw['Auctions']))


@check('v3.search.start_paging')
def _(c):
    c.catalog()
    two = c.search(num=2, start=0)['Auctions']
    second = c.search(num=1, start=1)['Auctions']
    ensure(len(two) == 2 and len(second) == 1, 'page sizes %d/%d' % (len(two), len(second)))
    key = lambda a: (a['ProductId'], a['PicName'])
    ensure(key(second[0]) == key(two[1]), 'Start=1 gave %r, expected %r' % (key(second[0]), key(two[1])))


@check('v3.search.start_plus_num_500')
def _(c):
    c.catalog()
    raw = c.search(start=400, num=100)
    ensure(raw['Auctions'] == [], 'expected no Auctions past the end, got %d' % len(raw['Auctions']))


@check('v3.search.filter_string')
def _(c):
    cat = c.catalog()
    raw = c.search(filter='int_attr=%d AND str_attr="blue"' % c.tag)
    got = sorted((a['ProductId'], a['PicName']) for a in raw['Auctions'])
    ensure(got == [(cat['b1']['product'], 'b1.png'), (cat['b2']['product'], 'b2.png')], 'got %r' % got)


@check('v3.search.filter_or_parens')
def _(c):
    cat = c.catalog()
    raw = c.search(filter='int_attr=%d AND (str_attr="red" OR str_attr="green")' % c.tag)
    got = sorted(a['ProductId'] for a in raw['Auctions'])
    ensure(got == sorted([cat['a']['product'], cat['c']['product']]), 'got %r' % got)


@check('v3.search.filter_int_ops')
def _(c):
    c.catalog()
    raw = c.search(filter='int_attr=%d AND int_attr2>=2 AND int_attr2<4' % c.tag)
    got = sorted(a['PicName'] for a in raw['Auctions'])
    ensure(got == ['b1.png', 'b2.png'], 'got %r' % got)
    raw = c.search(filter='int_attr=%d AND int_attr2>3 AND int_attr2<=4 AND str_attr!="red"' % c.tag)
    got = sorted(a['PicName'] for a in raw['Auctions'])
    ensure(got == ['c.png'], 'got %r' % got)


@check('v3.search.distinct_product_id')
def _(c):
    cat = c.catalog()
    raw = c.search(data=c.pics['b1'], distinct_product_id=True)
    products = [a['ProductId'] for a in raw['Auctions']]
    ensure(len(products) == len(set(products)), 'duplicate ProductIds with DistinctProductId: %r' % products)
    ensure(cat['b1']['product'] in products, 'product b missing')
    raw = c.search(data=c.pics['b1'], distinct_product_id=False)
    n = sum(1 for a in raw['Auctions'] if a['ProductId'] == cat['b1']['product'])
    ensure(n == 2, 'without DistinctProductId product b should appear twice, got %d' % n)


@check('v3.search.score_threshold')
def _(c):
    cat = c.catalog()
    raw = c.search(score_threshold='0.99')
    ensure(hit(raw, cat['a']['product'], 'a.png'), 'the identical picture is missing at ScoreThreshold 0.99')
    low = [a['Score'] for a in raw['Auctions'] if a['Score'] < 0.99]
    ensure(not low, 'Scores under the threshold: %r' % low)


@check('v3.search.region_given')
def _(c):
    c.catalog()
    raw = c.search(region='10,150,10,120', crop=True)
    ensure(raw['PicInfo']['Region'] == '10,150,10,120', 'PicInfo.Region %r, expected the given region' % raw['PicInfo']['Region'])


@check('v3.search.category_given')
def _(c):
    c.catalog()
    raw = c.search(category_id=3)
    ensure(raw['PicInfo']['CategoryId'] == 3, 'PicInfo.CategoryId %r, expected the given 3' % raw['PicInfo']['CategoryId'])


@check('v3.search.crop_false')
def _(c):
    cat = c.catalog()
    raw = c.search(crop=False)
    ensure(hit(raw, cat['a']['product'], 'a.png'), 'identical picture not found with Crop=False')


@check('v3.search.bool_spellings')
def _(c):
    c.catalog()
    for spelling in ('true', 'false', 'TRUE', 'False'):
        c.search(crop=spelling, distinct_product_id=spelling, num=1)


@check('v3.search.pictures_dir')
def _(c):
    c.catalog()
    ensure(c.dir_pictures, 'no pictures found in --pictures %s' % c.args.pictures)
    for i, (name, data) in enumerate(c.dir_pictures[:6]):
        raw = c.search(data=data, num=3, category_id=None)
        top = raw['Auctions'][0] if raw['Auctions'] else {}
        ensure(top.get('PicName') == name and top.get('Score', 0) >= 0.99,
               '%s: first hit %r score %r' % (name, top.get('PicName'), top.get('Score')))


# ---- the other operations ------------------------------------------------------------------------

@check('v3.search_by_name')
def _(c):
    cat = c.catalog()
    raw = c.v3.ok('SearchImageByName', instance_name=INSTANCE, product_id=cat['a']['product'], pic_name='a.png',
                  filter='int_attr=%d' % c.tag, num=10, start=0)
    top = raw['Auctions'][0] if raw['Auctions'] else {}
    ensure((top.get('ProductId'), top.get('PicName')) == (cat['a']['product'], 'a.png'), 'first hit %r' % top)
    ensure(top['Score'] >= 0.99, 'Score %r' % top['Score'])
    ensure(raw['Head']['DocsReturn'] == len(raw['Auctions']), 'Head.DocsReturn')


@check('v3.search_by_filter')
def _(c):
    cat = c.catalog()
    raw = c.v3.ok('SearchImageByFilter', instance_name=INSTANCE, filter='int_attr=%d AND str_attr="blue"' % c.tag, num=10, start=0)
    got = sorted((a['ProductId'], a['PicName']) for a in raw['Auctions'])
    ensure(got == [(cat['b1']['product'], 'b1.png'), (cat['b2']['product'], 'b2.png')], 'got %r' % got)
    raw = c.v3.ok('SearchImageByFilter', instance_name=INSTANCE, filter='int_attr=%d' % c.tag, num=1, start=1)
    ensure(len(raw['Auctions']) == 1, '%d Auctions for Num=1' % len(raw['Auctions']))


@check('v3.check_image_exists')
def _(c):
    cat = c.catalog()
    raw = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=cat['c']['product'], pic_name='c.png')
    ensure(raw['Exists'] is True, 'Exists %r' % raw['Exists'])
    a = raw.get('Auctions') or {}
    ensure(a.get('ProductId') == cat['c']['product'] and a.get('PicName') == 'c.png' and a.get('CategoryId') == 0,
           'Auctions %r' % a)
    raw = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=c.prefix + '-nope', pic_name='nope.png')
    ensure(raw['Exists'] is False, 'Exists %r for an unknown picture' % raw['Exists'])


@check('v3.update_image')
def _(c):
    cat = c.catalog()
    product = cat['c']['product']
    c.v3.ok('UpdateImage', instance_name=INSTANCE, product_id=product, pic_name='c.png', custom_content='updated',
            int_attr_2=44, int_attr_3=-7, str_attr_3='q v', str_attr_4='w/x')  # IntAttr3/4, StrAttr3/4 go in the query
    a = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=product, pic_name='c.png').get('Auctions') or {}
    want = dict(CustomContent='updated', IntAttr=c.tag, IntAttr2=44, IntAttr3=-7, StrAttr='green', StrAttr2='keep me',
                StrAttr3='q v', StrAttr4='w/x', CategoryId=0)
    bad = {k: a.get(k) for k, v in want.items() if a.get(k) != v}
    ensure(not bad, 'after UpdateImage (unlisted attributes must be kept): %r' % bad)
    raw = c.search(data=c.pics['c'], filter='int_attr=%d AND int_attr2=44' % c.tag)
    ensure(hit(raw, product, 'c.png'), 'search does not see the updated IntAttr2')


@check('v3.compare_similar')
def _(c):
    same = c.v3.ok('CompareSimilarByImage', instance_name=INSTANCE, primary_pic_content=b64(c.pics['a']),
                   secondary_pic_content=b64(c.pics['a']))
    other = c.v3.ok('CompareSimilarByImage', instance_name=INSTANCE, primary_pic_content=b64(c.pics['a']),
                    secondary_pic_content=b64(c.pics['c']))
    ensure(0.99 <= same['Score'] <= 1.0, 'identical pictures Score %r' % same['Score'])
    ensure(0.0 <= other['Score'] < same['Score'], 'different pictures Score %r (identical %r)' % (other['Score'], same['Score']))


@check('v3.dump_meta')
def _(c):
    raw = c.v3.ok('DumpMeta', instance_name=INSTANCE)
    data = raw['Data']
    ensure(data['DumpMetaStatus'] in ('PROCESSING', 'FAIL', 'SUCCESS'), 'DumpMetaStatus %r' % data['DumpMetaStatus'])
    ensure(data['Id'], 'empty Data.Id')
    deadline = time.time() + c.args.task_timeout
    while True:
        fields = dict(instance_name=INSTANCE, page_number=1, page_size=50)
        if data['Id'].isdigit():
            fields['id'] = int(data['Id'])
        lst = c.v3.ok('DumpMetaList', **fields)['Data']
        mine = [t for t in lst['DumpMetaList'] if str(t['Id']) == data['Id']]
        ensure(mine, 'task %s not in DumpMetaList' % data['Id'])
        ensure(lst['TotalCount'] >= len(lst['DumpMetaList']), 'TotalCount %r' % lst['TotalCount'])
        task = mine[0]
        ensure(task['Status'] in ('PROCESSING', 'FAIL', 'SUCCESS'), 'Status %r' % task['Status'])
        if task['Status'] != 'PROCESSING':
            break
        ensure(time.time() < deadline, 'dump still PROCESSING after %ss' % c.args.task_timeout)
        time.sleep(1)
    ensure(task['Status'] == 'SUCCESS', 'dump ended %s %s %s' % (task['Status'], task.get('Code'), task.get('Msg')))
    url = task.get('MetaUrl') or ''
    ensure(url, 'no MetaUrl')
    if url.startswith('/'):
        url = 'http://%s%s' % (c.args.endpoint, url)
    with urllib.request.urlopen(url, timeout=60) as r:
        ensure(r.status == 200 and r.read(1), 'MetaUrl download failed')


@check('v3.increase_instance')
def _(c):
    if not (c.args.bucket and c.args.bucket_dir):
        raise Skip('needs --bucket NAME and --bucket-dir DIR (the directory the server maps to that bucket)')
    folder = 'conformance-%s' % c.run
    os.makedirs(os.path.join(c.args.bucket_dir, folder), exist_ok=True)
    product = c.pid('inc')
    with open(os.path.join(c.args.bucket_dir, folder, 'inc.png'), 'wb') as f:
        f.write(make_png(77))
    line = dict(OperationType='ADD', ProductId=product, PicName='inc.png', CategoryId=0, IntAttr=c.tag + 4, StrAttr='inc',
                CustomContent='from increment')
    with open(os.path.join(c.args.bucket_dir, folder, 'increment.meta'), 'w') as f:
        f.write(json.dumps(line) + '\n')
    path = '/%s/increment.meta' % folder
    data = c.v3.ok('IncreaseInstance', instance_name=INSTANCE, bucket_name=c.args.bucket, path=path)['Data']
    ensure(data['Id'], 'empty Data.Id')
    deadline = time.time() + c.args.task_timeout
    while True:
        lst = c.v3.ok('IncreaseList', instance_name=INSTANCE, page_number=1, page_size=50)['Data']
        mine = [t for t in lst['Increments']['Instance'] if str(t['Id']) == data['Id']]
        ensure(mine, 'task %s not in IncreaseList' % data['Id'])
        if mine[0]['Status'] not in ('PROCESSING', 'NORMAL', 'WAITING'):
            break
        ensure(time.time() < deadline, 'increment still %s' % mine[0]['Status'])
        time.sleep(1)
    raw = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=product, pic_name='inc.png')
    ensure(raw['Exists'] is True, 'the incremented picture does not exist (task %r)' % mine[0])


@check('v3.increase_list')
def _(c):
    c.v3.ok('IncreaseList', instance_name=INSTANCE, page_number=1, page_size=10)


@check('v3.search_by_text.product_instance')
def _(c):
    # SearchImageByText needs a multimodal instance; demoinstance is a product instance.
    c.v3.expect_error(500, 'UnsupportedOperationType', 'SearchImageByText', instance_name=INSTANCE, text='red shirt')


# ---- V1 signing (signature_algorithm='v2') ---------------------------------------------------------

@check('v1.detail')
def _(c):
    raw = c.v1.ok('Detail', instance_name=INSTANCE)
    ensure(raw['Instance']['Name'] == INSTANCE, 'Instance.Name %r' % raw['Instance']['Name'])


@check('v1.add_search_update_delete')
def _(c):
    product = c.pid('v1 p+1')
    c.add(c.v1, product, 'v1 pic.png', c.pics['v1'], category_id=0, int_attr=c.tag + 5, str_attr='v1', custom_content='a&b=c')
    raw = c.search(client=c.v1, data=c.pics['v1'], filter='int_attr=%d' % (c.tag + 5))
    ensure(hit(raw, product, 'v1 pic.png'), 'V1 search did not find the V1 picture')
    c.v1.ok('UpdateImage', instance_name=INSTANCE, product_id=product, pic_name='v1 pic.png', str_attr_3='x y*z~', int_attr_4=9)
    a = c.v1.ok('CheckImageExists', instance_name=INSTANCE, product_id=product, pic_name='v1 pic.png').get('Auctions') or {}
    ensure(a.get('StrAttr3') == 'x y*z~' and a.get('IntAttr4') == 9, 'after update %r' % a)
    raw = c.v1.ok('DeleteImage', instance_name=INSTANCE, product_id=product, pic_name='v1 pic.png')
    ensure(raw['Data']['PicNames'] == ['v1 pic.png'], 'PicNames %r' % raw['Data']['PicNames'])


# ---- ROA 2019-03-25 -------------------------------------------------------------------------------

def roa_add(c, product, pic, data, **params):
    r = RoaAddImageRequest()
    r.set_InstanceName(INSTANCE)
    r.set_ProductId(product)
    r.set_PicName(pic)
    r.set_PicContent(b64(data))
    for k, v in params.items():
        getattr(r, 'set_' + k)(v)
    c.products.add(product)
    return r


def roa_ok(raw, extra=None):
    validate('ROA', raw, dict(OK, **(extra or {})))
    ensure(raw['Success'] is True and raw['Code'] == 0, 'Success/Code %r/%r' % (raw['Success'], raw['Code']))
    return raw


@check('roa.add_search_delete')
def _(c):
    product = c.pid('roa')
    raw = roa_ok(c.roa.do(roa_add(c, product, 'roa.png', c.pics['roa'], CategoryId=0, Crop=True, IntAttr=c.tag + 6,
                                  StrAttr='roa', CustomContent='roa content')),
                 {'Message?': str, 'PicInfo': {'CategoryId': int, 'Region': str}})
    r = RoaSearchImageRequest()
    r.set_InstanceName(INSTANCE)
    r.set_Type('SearchByPic')
    r.set_PicContent(b64(c.pics['roa']))
    r.set_Num(10)
    r.set_Start(0)
    r.set_Filter('int_attr=%d' % (c.tag + 6))
    r.set_CategoryId(0)
    raw = roa_ok(c.roa.do(r), {'Msg': str, 'Head': HEAD, 'PicInfo': {'CategoryId': int, 'Region': str, 'AllCategories': [CATEGORY]},
                               'Auctions': [dict(FILTER_AUCTION, **{'SortExprValues': str, 'Score?': float})]})
    top = raw['Auctions'][0] if raw['Auctions'] else {}
    ensure((top.get('ProductId'), top.get('PicName')) == (product, 'roa.png'), 'first hit %r' % top)
    ensure(top.get('IntAttr') == c.tag + 6 and top.get('StrAttr') == 'roa' and top.get('CustomContent') == 'roa content',
           'attributes %r' % top)
    r = RoaSearchImageRequest()
    r.set_InstanceName(INSTANCE)
    r.set_Type('SearchByName')
    r.set_ProductId(product)
    r.set_PicName('roa.png')
    r.set_Num(5)
    raw = roa_ok(c.roa.do(r), {'Auctions': [FILTER_AUCTION]})
    ensure(raw['Auctions'] and raw['Auctions'][0]['ProductId'] == product, 'SearchByName first hit %r' % raw['Auctions'][:1])
    r = RoaDeleteImageRequest()
    r.set_InstanceName(INSTANCE)
    r.set_ProductId(product)
    r.set_PicName('roa.png')
    roa_ok(c.roa.do(r))
    raw = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=product, pic_name='roa.png')
    ensure(raw['Exists'] is False, 'still exists after the ROA DeleteImage')


# ---- bad inputs: parameters ------------------------------------------------------------------------

def bad_search(name, status, code, **fields):
    @check('v3.bad.search.' + name)
    def _(c):
        f = dict(instance_name=INSTANCE, pic_content=b64(c.pics['a']))
        f.update(fields)
        for k, v in list(f.items()):
            if callable(v):
                f[k] = v(c)
            if f[k] is None:
                del f[k]
        c.v3.expect_error(status, code, 'SearchImageByPic', **f)


bad_search('num_0', 400, 'InvalidNumParameter', num=0)
bad_search('num_negative', 400, 'InvalidNumParameter', num=-1)
bad_search('num_not_integer', 400, 'InvalidNumParameter', num='ten')
bad_search('num_101', 400, 'OverflowMaxReturnNum', num=101)
bad_search('start_negative', 400, 'InvalidStartParameter', start=-1)
bad_search('start_500', 400, 'InvalidStartParameter', start=500, num=1)
bad_search('start_not_integer', 400, 'InvalidStartParameter', start='x')
bad_search('start_plus_num_505', 400, 'OverflowMaxResultNum', start=495, num=10)
bad_search('start_plus_num_501', 400, 'OverflowMaxResultNum', start=401, num=100)
bad_search('pic_not_base64', 400, 'InvalidPicContent', pic_content='!!not*base64!!')
bad_search('pic_over_4mb', 400, 'InvalidPicContent',
           pic_content=lambda c: b64(png_from_rgb(1200, 1200, os.urandom(1200 * 1200 * 3), level=0)))
bad_search('pic_not_an_image', 400, 'UnsupportedPicFormat', pic_content=b64(b'hello, this is plain text, not a picture' * 20))
bad_search('pic_svg', 400, 'UnsupportedPicFormat',
           pic_content=b64(b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><rect width="200" height="200"/></svg>'))
bad_search('pic_50x50', 400, 'UnsupportedPicPixels', pic_content=lambda c: b64(make_png(1, 50, 50)))
bad_search('pic_99x200', 400, 'UnsupportedPicPixels', pic_content=lambda c: b64(make_png(2, 99, 200)))
bad_search('pic_4097x100', 400, 'UnsupportedPicPixels', pic_content=lambda c: b64(make_png(3, 4097, 120)))
bad_search('pic_exif_rotated_png', 400, 'IncorrectOrientation',
           pic_content=lambda c: b64(make_png(4, extra_chunks=[(b'eXIf', exif_orientation_tiff(6))])))
bad_search('pic_empty', 400, 'MissingParameter', pic_content='')
bad_search('pic_missing', 400, 'MissingParameter', pic_content=None)
bad_search('region_not_numbers', 400, 'InvalidRegion', region='a,b,c,d')
bad_search('region_three_values', 400, 'InvalidRegion', region='1,2,3')
bad_search('region_x1_after_x2', 400, 'InvalidRegion', region='150,10,10,120')
bad_search('region_outside_picture', 400, 'InvalidRegion', region='0,5000,0,5000')
bad_search('filter_bad_operator', 400, 'InvalidFilterClause', filter='int_attr>>1')
bad_search('filter_unknown_field', 400, 'InvalidFilterClause', filter='price=1')
bad_search('filter_string_ordering', 400, 'InvalidFilterClause', filter='str_attr>"a"')
bad_search('filter_unterminated_string', 400, 'InvalidFilterClause', filter='str_attr="abc')
bad_search('filter_dangling_and', 400, 'InvalidFilterClause', filter='int_attr=1 AND')
bad_search('filter_over_256', 400, 'InvalidFilterClause', filter='int_attr=1' + ' OR int_attr=1' * 24)
bad_search('category_unknown', 400, 'InvalidCategory', category_id=12345)
bad_search('category_negative', 400, 'InvalidCategory', category_id=-1)
bad_search('category_not_integer', 400, 'InvalidCategory', category_id='shoes')
bad_search('instance_unknown', 400, 'InvalidInstance', instance_name='nosuchinstance')
bad_search('instance_too_long', 400, 'InvalidInstance', instance_name='i' * 21)
bad_search('instance_missing', 400, 'MissingParameter', instance_name=None)


@check('v3.bad.search.pic_exif_rotated_jpeg')
def _(c):
    jpegs = [d for n, d in c.dir_pictures if d[:2] == b'\xff\xd8']
    if not jpegs:
        raise Skip('no JPEG in --pictures to add an EXIF orientation to')
    c.v3.expect_error(400, 'IncorrectOrientation', 'SearchImageByPic', instance_name=INSTANCE,
                      pic_content=b64(jpeg_with_orientation(jpegs[0], 6)))


def bad_add(name, status, code, **fields):
    @check('v3.bad.add.' + name)
    def _(c):
        f = dict(instance_name=INSTANCE, product_id=c.pid('bad'), pic_name='bad.png', pic_content=b64(c.pics['x']),
                 int_attr=c.tag + 9)
        f.update(fields)
        f = {k: v for k, v in f.items() if v is not None}
        c.v3.expect_error(status, code, 'AddImage', **f)


bad_add('product_id_missing', 400, 'MissingParameter', product_id=None)
bad_add('pic_name_missing', 400, 'MissingParameter', pic_name=None)
bad_add('pic_content_missing', 400, 'MissingParameter', pic_content=None)
bad_add('product_id_513', 400, 'InvalidProductId', product_id='P' * 513)
bad_add('pic_name_513', 400, 'InvalidPicName', pic_name='N' * 513)
bad_add('custom_content_4097', 400, 'InvalidCustomContent', custom_content='C' * 4097)
bad_add('str_attr_129', 400, 'InvalidStrAttr', str_attr='S' * 129)
bad_add('str_attr2_129', 400, 'InvalidStrAttr2', str_attr_2='S' * 129)
bad_add('str_attr4_129', 400, 'InvalidStrAttr4', str_attr_4='S' * 129)
for _i, _ch in enumerate(('\\', '\u00a5', '$', '&', '%')):
    bad_add('str_attr_forbidden_%s' % ('backslash', 'yen', 'dollar', 'ampersand', 'percent')[_i], 400, 'InvalidStrAttr',
            str_attr='ab%scd' % _ch)
bad_add('str_attr3_forbidden_dollar', 400, 'InvalidStrAttr3', str_attr_3='a$b')
bad_add('int_attr_2pow31', 400, 'InvalidIntAttr', int_attr=2 ** 31)
bad_add('int_attr_below_int32', 400, 'InvalidIntAttr', int_attr=-2 ** 31 - 1)
bad_add('int_attr_not_integer', 400, 'InvalidIntAttr', int_attr='12a')
bad_add('int_attr2_2pow31', 400, 'InvalidIntAttr2', int_attr_2=2 ** 31)
bad_add('int_attr4_not_integer', 400, 'InvalidIntAttr4', int_attr_4='1.5')
bad_add('category_unknown', 400, 'InvalidCategory', category_id=7777)
bad_add('instance_unknown', 400, 'InvalidInstance', instance_name='nosuchinstance')
bad_add('pic_not_base64', 400, 'InvalidPicContent', pic_content='%%%')
bad_add('pic_too_small', 400, 'UnsupportedPicPixels', pic_content=b64(make_png(5, 60, 160)))
bad_add('region_bad', 400, 'InvalidRegion', region='1;2;3;4')


@check('v3.bad.update.int_attr3_query_2pow31')
def _(c):
    cat = c.catalog()
    c.v3.expect_error(400, 'InvalidIntAttr3', 'UpdateImage', instance_name=INSTANCE, product_id=cat['c']['product'],
                      pic_name='c.png', int_attr_3=2 ** 31)


@check('v3.bad.update.str_attr_forbidden')
def _(c):
    cat = c.catalog()
    c.v3.expect_error(400, 'InvalidStrAttr', 'UpdateImage', instance_name=INSTANCE, product_id=cat['c']['product'],
                      pic_name='c.png', str_attr='100%')


@check('v3.bad.update.pic_not_exist')
def _(c):
    c.v3.expect_error(400, 'PicNotExist', 'UpdateImage', instance_name=INSTANCE, product_id=c.prefix + '-nope',
                      pic_name='nope.png', custom_content='x')


@check('v3.bad.search_by_name.pic_not_exist')
def _(c):
    c.v3.expect_error(400, 'PicNotExist', 'SearchImageByName', instance_name=INSTANCE, product_id=c.prefix + '-nope',
                      pic_name='nope.png')


@check('v3.bad.search_by_name.pic_name_missing')
def _(c):
    c.v3.expect_error(400, 'MissingParameter', 'SearchImageByName', instance_name=INSTANCE, product_id=c.prefix + '-a')


@check('v3.bad.search_by_name.num_101')
def _(c):
    cat = c.catalog()
    c.v3.expect_error(400, 'OverflowMaxReturnNum', 'SearchImageByName', instance_name=INSTANCE,
                      product_id=cat['a']['product'], pic_name='a.png', num=101)


@check('v3.bad.search_by_filter.filter_missing')
def _(c):
    c.v3.expect_error(400, 'MissingParameter', 'SearchImageByFilter', instance_name=INSTANCE, num=10)


@check('v3.bad.search_by_filter.filter_bad')
def _(c):
    c.v3.expect_error(400, 'InvalidFilterClause', 'SearchImageByFilter', instance_name=INSTANCE, filter='int_attr=="1"')


@check('v3.bad.search_by_filter.start_plus_num')
def _(c):
    c.v3.expect_error(400, 'OverflowMaxResultNum', 'SearchImageByFilter', instance_name=INSTANCE,
                      filter='int_attr=%d' % c.tag, start=450, num=60)


@check('v3.bad.delete.product_id_missing')
def _(c):
    c.v3.expect_error(400, 'MissingParameter', 'DeleteImage', instance_name=INSTANCE, pic_name='a.png')


@check('v3.bad.delete.by_filter_without_filter')
def _(c):
    c.v3.expect_error(400, 'MissingParameter', 'DeleteImage', instance_name=INSTANCE, is_delete_by_filter=True)


@check('v3.bad.delete.by_filter_bad_filter')
def _(c):
    c.v3.expect_error(400, 'InvalidFilterClause', 'DeleteImage', instance_name=INSTANCE, is_delete_by_filter=True,
                      filter='int_attr=%d AND (' % c.tag)


@check('v3.bad.compare.secondary_missing')
def _(c):
    c.v3.expect_error(400, 'MissingParameter', 'CompareSimilarByImage', instance_name=INSTANCE,
                      primary_pic_content=b64(c.pics['a']))


@check('v3.bad.compare.secondary_not_an_image')
def _(c):
    c.v3.expect_error(400, 'UnsupportedPicFormat', 'CompareSimilarByImage', instance_name=INSTANCE,
                      primary_pic_content=b64(c.pics['a']), secondary_pic_content=b64(b'GIF-not-really' * 50))


@check('v3.bad.check_exists.instance_unknown')
def _(c):
    c.v3.expect_error(400, 'InvalidInstance', 'CheckImageExists', instance_name='nosuchinstance', product_id='p', pic_name='n')


@check('v3.bad.detail.instance_unknown')
def _(c):
    c.v3.expect_error(400, 'InvalidInstance', 'Detail', instance_name='nosuchinstance')


@check('v1.bad.search.num_101')
def _(c):
    c.v1.expect_error(400, 'OverflowMaxReturnNum', 'SearchImageByPic', instance_name=INSTANCE, pic_content=b64(c.pics['a']), num=101)


@check('v1.bad.add.str_attr_forbidden')
def _(c):
    c.v1.expect_error(400, 'InvalidStrAttr', 'AddImage', instance_name=INSTANCE, product_id=c.pid('bad'), pic_name='bad.png',
                      pic_content=b64(c.pics['x']), str_attr='a&b')


@check('v1.bad.instance_unknown')
def _(c):
    c.v1.expect_error(400, 'InvalidInstance', 'SearchImageByPic', instance_name='nosuchinstance', pic_content=b64(c.pics['a']))


@check('roa.bad.instance_missing')
def _(c):
    r = RoaSearchImageRequest()
    r.set_Type('SearchByPic')
    r.set_PicContent(b64(c.pics['a']))
    c.roa.expect_error(400, 'MissingParameter', r)


@check('roa.bad.instance_unknown')
def _(c):
    r = RoaSearchImageRequest()
    r.set_InstanceName('nosuchinstance')
    r.set_Type('SearchByPic')
    r.set_PicContent(b64(c.pics['a']))
    c.roa.expect_error(400, 'InvalidInstance', r)


@check('roa.bad.num_101')
def _(c):
    r = RoaSearchImageRequest()
    r.set_InstanceName(INSTANCE)
    r.set_Type('SearchByPic')
    r.set_PicContent(b64(c.pics['a']))
    r.set_Num(101)
    c.roa.expect_error(400, 'OverflowMaxReturnNum', r)


@check('roa.bad.search_by_name.pic_not_exist')
def _(c):
    r = RoaSearchImageRequest()
    r.set_InstanceName(INSTANCE)
    r.set_Type('SearchByName')
    r.set_ProductId(c.prefix + '-nope')
    r.set_PicName('nope.png')
    c.roa.expect_error(400, 'PicNotExist', r)


@check('roa.bad.add.pic_not_an_image')
def _(c):
    c.roa.expect_error(400, 'UnsupportedPicFormat', roa_add(c, c.pid('bad'), 'bad.png', b'plain text, no picture' * 10))


# ---- bad inputs: signing and the gateway --------------------------------------------------------------

@check('auth.v3.wrong_secret')
def _(c):
    Rpc(c.args.endpoint, c.args.access_key_id, c.args.access_key_secret + 'x').expect_error(
        400, 'SignatureDoesNotMatch', 'Detail', instance_name=INSTANCE)


@check('auth.v1.wrong_secret')
def _(c):
    Rpc(c.args.endpoint, c.args.access_key_id, c.args.access_key_secret + 'x', v1=True).expect_error(
        400, 'SignatureDoesNotMatch', 'Detail', instance_name=INSTANCE)


@check('auth.roa.wrong_secret')
def _(c):
    r = RoaDeleteImageRequest()
    r.set_InstanceName(INSTANCE)
    r.set_ProductId(c.prefix + '-nope')
    e = Roa(c.args.endpoint, c.args.access_key_id, c.args.access_key_secret + 'x').expect_error(400, 'SignatureDoesNotMatch', r)
    ensure(':' in e.get_error_msg(), 'Message must contain ":" (aliyunsdkcore splits it)')


@check('auth.v3.unknown_key')
def _(c):
    Rpc(c.args.endpoint, 'NoSuchKey' + c.run, 'whatever').expect_error(
        404, 'InvalidAccessKeyId.NotFound', 'Detail', instance_name=INSTANCE)


@check('auth.v1.unknown_key')
def _(c):
    Rpc(c.args.endpoint, 'NoSuchKey' + c.run, 'whatever', v1=True).expect_error(
        404, 'InvalidAccessKeyId.NotFound', 'Detail', instance_name=INSTANCE)


@check('auth.roa.unknown_key')
def _(c):
    r = RoaDeleteImageRequest()
    r.set_InstanceName(INSTANCE)
    r.set_ProductId(c.prefix + '-nope')
    Roa(c.args.endpoint, 'NoSuchKey' + c.run, 'whatever').expect_error(404, 'InvalidAccessKeyId.NotFound', r)


def _shifted_timestamp(minutes):
    def ts():
        t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
        return t.strftime('%Y-%m-%dT%H:%M:%SZ')
    return staticmethod(ts)


@check('auth.v3.timestamp_expired')
def _(c):
    with patched(OpenApiUtils, 'get_timestamp', _shifted_timestamp(-20)):
        c.v3.expect_error(400, 'InvalidTimeStamp.Expired', 'Detail', instance_name=INSTANCE)


@check('auth.v3.timestamp_future')
def _(c):
    with patched(OpenApiUtils, 'get_timestamp', _shifted_timestamp(+20)):
        c.v3.expect_error(400, 'InvalidTimeStamp.Expired', 'Detail', instance_name=INSTANCE)


@check('auth.v1.timestamp_expired')
def _(c):
    with patched(OpenApiUtils, 'get_timestamp', _shifted_timestamp(-20)):
        c.v1.expect_error(400, 'InvalidTimeStamp.Expired', 'Detail', instance_name=INSTANCE)


@check('auth.v3.nonce_reused')
def _(c):
    nonce = 'conformance-v3-%s-%d' % (c.run, random.randrange(10 ** 9))
    with patched(OpenApiUtils, 'get_nonce', staticmethod(lambda: nonce)):
        c.v3.call('Detail', instance_name=INSTANCE)  # the first use of the nonce must pass
        c.v3.expect_error(400, 'SignatureNonceUsed', 'Detail', instance_name=INSTANCE)


@check('auth.v1.nonce_reused')
def _(c):
    nonce = 'conformance-v1-%s-%d' % (c.run, random.randrange(10 ** 9))
    with patched(OpenApiUtils, 'get_nonce', staticmethod(lambda: nonce)):
        c.v1.call('Detail', instance_name=INSTANCE)  # the first use of the nonce must pass
        c.v1.expect_error(400, 'SignatureNonceUsed', 'Detail', instance_name=INSTANCE)


def _unknown_action(client):
    params = open_api_models.Params(action='NoSuchAction', version='2020-12-14', protocol='HTTPS', pathname='/',
                                    method='POST', auth_type='AK', style='RPC', req_body_type='formData', body_type='json')
    req = open_api_models.OpenApiRequest(body={'InstanceName': INSTANCE})
    try:
        client.client.call_api(params, req, RuntimeOptions())
    except (tea_exc.ClientException, tea_exc.ServerException) as e:
        ensure(e.code == 'InvalidApi.NotFound' and e.status_code == 404,
               'got %s %s, expected 404 InvalidApi.NotFound' % (e.status_code, e.code))
        return
    raise CheckFailed('an unknown Action succeeded')


@check('auth.v3.unknown_action')
def _(c):
    _unknown_action(c.v3)


@check('auth.v1.unknown_action')
def _(c):
    _unknown_action(c.v1)


# ---- deletes last ------------------------------------------------------------------------------------

@check('v3.delete.by_pic')
def _(c):
    cat = c.catalog()
    raw = c.v3.ok('DeleteImage', instance_name=INSTANCE, product_id=cat['b2']['product'], pic_name='b2.png')
    ensure(raw['Data']['PicNames'] == ['b2.png'], 'PicNames %r' % raw['Data']['PicNames'])
    raw = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=cat['b2']['product'], pic_name='b2.png')
    ensure(raw['Exists'] is False, 'b2 still exists')
    raw = c.v3.ok('CheckImageExists', instance_name=INSTANCE, product_id=cat['b1']['product'], pic_name='b1.png')
    ensure(raw['Exists'] is True, 'b1 (same product) was deleted too')


@check('v3.delete.by_product')
def _(c):
    product = c.pid('multi')
    for i in range(3):
        c.add(c.v3, product, 'm%d.png' % i, make_png(900 + i), int_attr=c.tag + 7)
    raw = c.v3.ok('DeleteImage', instance_name=INSTANCE, product_id=product)
    ensure(sorted(raw['Data']['PicNames']) == ['m0.png', 'm1.png', 'm2.png'], 'PicNames %r' % raw['Data']['PicNames'])
    raw = c.v3.ok('SearchImageByFilter', instance_name=INSTANCE, filter='int_attr=%d' % (c.tag + 7), num=10)
    ensure(raw['Auctions'] == [], 'pictures left after deleting the product: %r' % raw['Auctions'])


@check('v3.delete.by_filter')
def _(c):
    for i in range(2):
        c.add(c.v3, c.pid('flt%d' % i), 'f.png', make_png(950 + i), int_attr=c.tag + 8)
    raw = c.v3.ok('DeleteImage', instance_name=INSTANCE, is_delete_by_filter=True, filter='int_attr=%d' % (c.tag + 8))
    ensure(sorted(raw['Data']['PicNames']) == ['f.png', 'f.png'], 'PicNames %r' % raw['Data']['PicNames'])
    raw = c.v3.ok('SearchImageByFilter', instance_name=INSTANCE, filter='int_attr=%d' % (c.tag + 8), num=10)
    ensure(raw['Auctions'] == [], 'pictures left after delete by filter: %r' % raw['Auctions'])


@check('v3.delete.unknown_product')
def _(c):
    raw = c.v3.ok('DeleteImage', instance_name=INSTANCE, product_id=c.prefix + '-nope')
    ensure(raw['Data']['PicNames'] == [], 'PicNames %r' % raw['Data']['PicNames'])


class Skip(Exception):
    pass


def cleanup(c):
    left = []
    for product in sorted(c.products):
        try:
            c.v3.call('DeleteImage', instance_name=INSTANCE, product_id=product)
        except Exception as e:  # noqa
            left.append('%s (%s)' % (product, describe(e)))
    if left:
        sys.stderr.write('cleanup: could not delete %d products: %s\n' % (len(left), ', '.join(left[:5])))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--endpoint', required=True, help='host:port of the imgsearch server')
    ap.add_argument('--access-key-id', required=True)
    ap.add_argument('--access-key-secret', required=True)
    ap.add_argument('--pictures', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'data', 'demo'),
                    help='a directory of pictures to add and search (default data/demo)')
    ap.add_argument('--only', default='', help='run only checks whose name starts with this prefix (comma-separated prefixes allowed)')
    ap.add_argument('--bucket', help='BucketName the server maps to --bucket-dir (for IncreaseInstance)')
    ap.add_argument('--bucket-dir', help='local directory behind --bucket')
    ap.add_argument('--task-timeout', type=int, default=120, help='seconds to wait for DumpMeta / IncreaseInstance tasks')
    ap.add_argument('--list', action='store_true', help='list the check names and exit')
    ap.add_argument('--no-cleanup', action='store_true')
    ap.add_argument('-v', '--verbose', action='store_true', help='print a traceback for unexpected exceptions')
    args = ap.parse_args(argv)
    logging.getLogger('aliyunsdkcore').setLevel(logging.CRITICAL)
    prefixes = [p for p in args.only.split(',') if p]
    selected = [(n, f) for n, f in CHECKS if not prefixes or any(n.startswith(p) for p in prefixes)]
    if args.list:
        print('\n'.join(n for n, _ in selected))
        return 0
    ctx = Ctx(args)
    passed = failed = 0
    for name, fn in selected:
        try:
            fn(ctx)
        except Skip as e:
            print('SKIP %s: %s' % (name, e), flush=True)
            continue
        except Exception as e:  # noqa: any failure of the server is a FAIL, never a crash
            failed += 1
            reason = describe(e).replace('\n', ' ')
            print('FAIL %s: %s' % (name, reason[:600]), flush=True)
            if args.verbose and not isinstance(e, CheckFailed):
                traceback.print_exc()
            continue
        passed += 1
        print('PASS %s' % name, flush=True)
    if not args.no_cleanup:
        cleanup(ctx)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
