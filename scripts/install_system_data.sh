#!/usr/bin/env bash
# Installs the system-level data the workbench reads: Fashion-MNIST from Debian's
# `dataset-fashion-mnist` package (IDX files under /usr/share/datasets/fashion-mnist).
# Never fails the set-up: if it cannot install, it says what to do instead.
set -u
DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DIR/train-images-idx3-ubyte.gz" ]; then
  echo "Fashion-MNIST: present in $DIR"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Fashion-MNIST: installing Debian package dataset-fashion-mnist"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 ||
     { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; then
    echo "Fashion-MNIST: installed in $DIR"
    exit 0
  fi
fi
cat <<MSG
Fashion-MNIST: NOT installed (needs root and apt-get). The image studies (06, 07) need it. Either
  - run: sudo apt-get install dataset-fashion-mnist            (Debian/Ubuntu), or
  - put the four IDX files (train-images-idx3-ubyte.gz, ...) in a folder and set
    WORKBENCH_FASHION_MNIST=/that/folder  (or pass path= to workbench.datasets.load_fashion_mnist).
MSG
exit 0
