"""Graphs of the models: the user-item graph (:mod:`.user_item`) and the item-item kNN graphs
built from modality features (:mod:`.knn`)."""

from recbole_rlmm.graph.knn import (
    EdgeGraph,
    knn_graph_edges,
    knn_neighbours,
    mix_item_graphs,
    sym_norm_values,
)
from recbole_rlmm.graph.user_item import (
    EdgeDropout,
    bipartite_adjacency,
    dedup_interactions,
    norm_adj_matrix,
    prune_edges,
    row_norm_adjacency,
    to_torch_sparse,
    user_item_block,
)

__all__ = [
    "EdgeDropout",
    "EdgeGraph",
    "bipartite_adjacency",
    "dedup_interactions",
    "knn_graph_edges",
    "knn_neighbours",
    "mix_item_graphs",
    "norm_adj_matrix",
    "prune_edges",
    "row_norm_adjacency",
    "sym_norm_values",
    "to_torch_sparse",
    "user_item_block",
]
