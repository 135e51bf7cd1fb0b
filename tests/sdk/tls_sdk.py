#!/usr/bin/env python3
"""The official Python SDK over HTTPS against `imgsearch serve --tls-cert/--tls-key`.

    python3 tests/sdk/tls_sdk.py --endpoint 127.0.0.1:8443 --access-key-id AK \
        --access-key-secret SECRET --ca ca.pem

The SDK is told to trust the test CA through its own option, `Config(ca=PATH)` (the Tea
runtime passes it to requests as `verify=PATH`); verification stays on. Checks:
  https.untrusted_ca     without `ca` the SDK refuses the server's certificate
  http.to_tls_port       protocol='http' against the TLS port: the server's 400 BadRequest
  https.add_and_search   AddImage then SearchImageByPic with protocol='https', V3 signing
  https.v1_signature     the same search with RPC signature V1
  https.roa_search       the same search through the core SDK's ROA path (AcsClient(verify=PATH))
Output: `PASS name` / `FAIL name: reason` per check, then `N passed, M failed`; exit 1 on
any failure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conformance import INSTANCE, REGION_ID, b64, make_png  # noqa: E402

from aliyunsdkcore.client import AcsClient  # noqa: E402
from aliyunsdkimagesearch.request.v20190325.SearchImageRequest import SearchImageRequest  # noqa: E402

from alibabacloud_imagesearch20201214 import models as M  # noqa: E402
from alibabacloud_imagesearch20201214.client import Client  # noqa: E402
from alibabacloud_tea_openapi import utils_models as open_api_models  # noqa: E402
from darabonba.runtime import RuntimeOptions  # noqa: E402


class CheckFailed(Exception):
    pass


def ensure(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def client(args, protocol='https', ca=True, v1=False):
    kw = dict(access_key_id=args.access_key_id, access_key_secret=args.access_key_secret,
              endpoint=args.endpoint, protocol=protocol, region_id=REGION_ID,
              read_timeout=120000, connect_timeout=10000)
    if ca:
        kw['ca'] = args.ca
    if v1:
        kw['signature_algorithm'] = 'v2'
    return Client(open_api_models.Config(**kw))


def runtime():
    return RuntimeOptions(autoretry=False)


def search(c, picture):
    request = M.SearchImageByPicRequest(instance_name=INSTANCE, pic_content=b64(picture),
                                        category_id=0, num=5)
    body = c.search_image_by_pic_with_options(request, runtime()).body
    ensure(body.success, 'search did not succeed: %r' % body.to_map())
    return [a.product_id for a in body.auctions]


def add_and_search(args, ctx):
    c = client(args)
    tag = '%d' % (time.time() * 1000)
    for seed in (11, 12, 13):
        product = 'tls-%s-%d' % (tag, seed)
        request = M.AddImageRequest(instance_name=INSTANCE, product_id=product,
                                    pic_name='%d.png' % seed, category_id=0,
                                    pic_content=b64(make_png(seed)))
        body = c.add_image_with_options(request, runtime()).body
        ensure(body.success, 'AddImage did not succeed: %r' % body.to_map())
    found = search(c, make_png(12))
    ctx['expected'] = 'tls-%s-12' % tag
    ensure(found and found[0] == ctx['expected'],
           'the added picture is not first: %r (expected %s)' % (found, ctx['expected']))


def v1_signature(args, ctx):
    found = search(client(args, v1=True), make_png(12))
    ensure(found and found[0] == ctx.get('expected'), 'V1-signed search found %r' % found)


def roa_search(args, ctx):
    # The core SDK (ROA paths, 2019-03-25) takes the CA bundle as AcsClient(verify=PATH).
    c = AcsClient(args.access_key_id, args.access_key_secret, REGION_ID, timeout=120,
                  connect_timeout=10, verify=args.ca)
    c.add_endpoint(REGION_ID, 'imagesearch', args.endpoint)
    r = SearchImageRequest()
    r.set_protocol_type('https')
    r.set_InstanceName(INSTANCE)
    r.set_Type('SearchByPic')
    r.set_PicContent(b64(make_png(12)))
    r.set_CategoryId(0)
    r.set_Num(5)
    raw = json.loads(c.do_action_with_exception(r).decode('utf-8'))
    found = [a.get('ProductId') for a in raw.get('Auctions', [])]
    ensure(found and found[0] == ctx.get('expected'), 'ROA search over https found %r' % found)


def untrusted_ca(args, ctx):
    try:
        search(client(args, ca=False), make_png(12))
    except Exception as e:  # noqa: the transport error, whatever the SDK wraps it in
        ensure('CERTIFICATE_VERIFY_FAILED' in str(e), 'unexpected failure: %s' % e)
        return
    raise CheckFailed('a client that does not trust the test CA was served')


def http_to_tls_port(args, ctx):
    try:
        search(client(args, protocol='http', ca=False), make_png(12))
    except Exception as e:  # noqa
        code = getattr(e, 'code', None)
        status = getattr(e, 'status_code', None)
        ensure(code == 'BadRequest' and status == 400 and 'https' in str(e),
               'expected 400 BadRequest naming https, got %s %s: %s' % (status, code, e))
        return
    raise CheckFailed('a plain-HTTP request to the TLS port succeeded')


# The refusals first: no pooled connection verified with the test CA exists yet to be reused.
CHECKS = [
    ('https.untrusted_ca', untrusted_ca),
    ('http.to_tls_port', http_to_tls_port),
    ('https.add_and_search', add_and_search),
    ('https.v1_signature', v1_signature),
    ('https.roa_search', roa_search),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--endpoint', required=True, help='host:port of the TLS server')
    ap.add_argument('--access-key-id', required=True)
    ap.add_argument('--access-key-secret', required=True)
    ap.add_argument('--ca', required=True, help='PEM file of the CA that issued the server certificate')
    args = ap.parse_args()
    ctx = {}
    passed = failed = 0
    for name, check in CHECKS:
        try:
            check(args, ctx)
        except Exception as e:  # noqa: every failure is reported, never a crash
            failed += 1
            print('FAIL %s: %s' % (name, str(e).replace('\n', ' ')[:600]), flush=True)
            continue
        passed += 1
        print('PASS %s' % name, flush=True)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
