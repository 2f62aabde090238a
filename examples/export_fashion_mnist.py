#!/usr/bin/python3
"""Export Fashion-MNIST (Debian's dataset-fashion-mnist package) to .npy files for rematch.

    /usr/bin/python3 examples/export_fashion_mnist.py OUT_DIR [--dir /usr/share/datasets/fashion-mnist]

writes OUT_DIR/{train,test}_x.npy (n x 784, uint8: rematch scales it by 1/255) and
OUT_DIR/{train,test}_y.npy (n, int64 classes 0..9).
"""
import argparse
import gzip
import os

import numpy as np


def idx(path, header_words):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = np.frombuffer(data, dtype=">u4", count=header_words)
    return np.frombuffer(data, dtype=np.uint8, offset=4 * header_words), dims


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split, prefix in [("train", "train"), ("test", "t10k")]:
        pixels, (_, n, rows, cols) = idx(f"{a.dir}/{prefix}-images-idx3-ubyte.gz", 4)
        labels, _ = idx(f"{a.dir}/{prefix}-labels-idx1-ubyte.gz", 2)
        np.save(f"{a.out}/{split}_x.npy", pixels.reshape(int(n), int(rows) * int(cols)))
        np.save(f"{a.out}/{split}_y.npy", labels.astype(np.int64))
        print(f"{a.out}/{split}_x.npy: {n} x {rows * cols} uint8; {a.out}/{split}_y.npy: {n} int64")


if __name__ == "__main__":
    main()
