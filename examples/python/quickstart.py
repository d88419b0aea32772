"""Quickstart: simulate a program, split it in time, and evaluate the popularity baseline.

.venv/bin/python examples/python/quickstart.py
"""

import numpy as np
import pandas as pd

import perkrec

program = perkrec.simulate(n_users=10_000, seed=1)
log = program.events
cut = log.time_range[1] - pd.Timedelta(days=30)
train, test = perkrec.split_by_time(log, cut)

train_matrix = perkrec.interaction_matrix(train, half_life_days=60, cut_time=cut)
future = perkrec.interaction_matrix(test, {"viewed": 0, "claimed": 1, "redeemed": 1})

model = perkrec.Popularity().fit(train_matrix, user_ids=log.user_ids, benefit_ids=log.benefit_ids)
users = np.flatnonzero(np.diff(future.indptr) > 0)
ids, _ = model.recommend(users, train_matrix[users], n=10)
print(perkrec.ranking_metrics(future[users], ids, k=10))
print(model.recommend(users[:2], train_matrix[users[:2]], n=3, as_frame=True))
