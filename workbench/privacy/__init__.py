"""Privacy studies: DP-SGD training (Opacus and a fast ghost-clipping engine), accounting, attacks, canaries."""
