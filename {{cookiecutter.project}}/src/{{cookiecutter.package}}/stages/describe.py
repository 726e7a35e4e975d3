"""``describe``: statistics of the training split for the report (see :mod:`..data_statistics`).

Writes ``reports/statistics.json``: exact with privacy off; with ``params.yaml: privacy`` on,
released through OpenDP, with the epsilon they spent (``validate``'s privacy gate adds it up).
"""

from __future__ import annotations

import logging

from ..config import Params, Paths
from ..data import read_prepared
from ..data_statistics import describe
from ..files import write_json
from ..schema import Schema

log = logging.getLogger(__name__)


def run(params: Params, paths: Paths) -> None:
    """Describe the training split."""
    schema = Schema.load(paths.schema)
    features, target = read_prepared(paths.train, schema)
    statistics = describe(features.assign(**{target.name: target}), schema, params.privacy)
    write_json(paths.statistics, statistics)
    if statistics["private"]:
        log.info("released with epsilon %s (OpenDP, Laplace)", statistics["epsilon"])
    else:
        log.info("exact statistics: privacy is off")
