"""The official Python SDK against a cluster: pictures added through one node, searched
through every node, one deleted through a third node; every node must answer the same.

Usage: cluster_sdk.py PICTURE_DIR NODE_ADDR NODE_ADDR NODE_ADDR (the pictures p0.png ...)."""
import base64
import os
import sys
import time

from alibabacloud_imagesearch20201214 import models
from alibabacloud_imagesearch20201214.client import Client
from alibabacloud_tea_openapi.models import Config

INSTANCE = "demoinstance"


def client(addr):
    return Client(Config(access_key_id="id", access_key_secret="secret", endpoint=addr,
                         protocol="http", region_id="cn-shanghai"))


def main():
    folder, nodes = sys.argv[1], sys.argv[2:]
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    pics = {n: base64.b64encode(open(os.path.join(folder, n), "rb").read()).decode() for n in names}
    for i, name in enumerate(names):
        client(nodes[1]).add_image(models.AddImageRequest(
            instance_name=INSTANCE, product_id=f"p{i}", pic_name=name, pic_content=pics[name],
            int_attr=i))
    # Every node, once it applied the log, finds each picture first by itself.
    for node in nodes:
        for i, name in enumerate(names):
            deadline = time.time() + 10
            while True:
                reply = client(node).search_image_by_pic(models.SearchImageByPicRequest(
                    instance_name=INSTANCE, pic_content=pics[name], num=3, crop=False))
                first = reply.body.auctions[0] if reply.body.auctions else None
                if first is not None and first.product_id == f"p{i}":
                    break
                assert time.time() < deadline, f"{node}: {name} not found first: {first}"
                time.sleep(0.2)
    client(nodes[2]).delete_image(models.DeleteImageRequest(instance_name=INSTANCE, product_id="p0"))
    for node in nodes:
        deadline = time.time() + 10
        while True:
            reply = client(node).search_image_by_pic(models.SearchImageByPicRequest(
                instance_name=INSTANCE, pic_content=pics[names[0]], num=10, crop=False))
            products = sorted(a.product_id for a in reply.body.auctions)
            if "p0" not in products:
                break
            assert time.time() < deadline, f"{node}: p0 still found after its delete"
            time.sleep(0.2)
        assert products == [f"p{i}" for i in range(1, len(names))], (node, products)
    print(f"ok: {len(names)} pictures through the SDK on {len(nodes)} nodes")


if __name__ == "__main__":
    main()
