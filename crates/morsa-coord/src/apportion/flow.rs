//! A small maximum-flow solver (Dinic's algorithm) for the failure-domain checks of
//! committee selection: the graphs have a few hundred vertices at most (zones, nodes,
//! operators), so plain vectors do.

use std::collections::VecDeque;

/// A directed graph with capacities, vertices `0..vertices`.
#[derive(Debug, Clone)]
pub(crate) struct FlowGraph {
    /// Per vertex, the indices of its edges in `edges` (forward and residual).
    adjacent: Vec<Vec<usize>>,
    /// Edges in pairs: edge `2k` is the forward one, `2k + 1` its residual twin.
    edges: Vec<Edge>,
}

#[derive(Debug, Clone)]
struct Edge {
    to: usize,
    capacity: u64,
}

impl FlowGraph {
    /// A graph with `vertices` vertices and no edges.
    pub(crate) fn new(vertices: usize) -> Self {
        Self { adjacent: vec![Vec::new(); vertices], edges: Vec::new() }
    }

    /// Adds an edge `from → to` of `capacity`; returns its index (for `flow_on` in tests).
    pub(crate) fn add_edge(&mut self, from: usize, to: usize, capacity: u64) -> usize {
        let index = self.edges.len();
        self.edges.push(Edge { to, capacity });
        self.edges.push(Edge { to: from, capacity: 0 });
        self.adjacent[from].push(index);
        self.adjacent[to].push(index + 1);
        index
    }

    /// The flow pushed through edge `edge` so far (the capacity of its residual twin).
    #[cfg(test)]
    pub(crate) fn flow_on(&self, edge: usize) -> u64 {
        self.edges[edge ^ 1].capacity
    }

    /// Pushes as much flow as possible from `source` to `sink`, stopping once `wanted` units
    /// flow; answers how much flowed.
    pub(crate) fn max_flow(&mut self, source: usize, sink: usize, wanted: u64) -> u64 {
        let mut total = 0;
        while total < wanted {
            let Some(levels) = self.levels(source, sink) else { break };
            let mut next_edge = vec![0; self.adjacent.len()];
            loop {
                let pushed = self.push(source, sink, wanted - total, &levels, &mut next_edge);
                if pushed == 0 {
                    break;
                }
                total += pushed;
                if total == wanted {
                    break;
                }
            }
        }
        total
    }

    /// Breadth-first distances from `source` over edges with capacity left, if `sink` is
    /// reachable.
    fn levels(&self, source: usize, sink: usize) -> Option<Vec<Option<usize>>> {
        let mut levels = vec![None; self.adjacent.len()];
        levels[source] = Some(0);
        let mut queue = VecDeque::from([source]);
        while let Some(vertex) = queue.pop_front() {
            let level = levels[vertex].unwrap_or(0);
            for &edge in &self.adjacent[vertex] {
                let Edge { to, capacity } = self.edges[edge];
                if capacity > 0 && levels[to].is_none() {
                    levels[to] = Some(level + 1);
                    queue.push_back(to);
                }
            }
        }
        levels[sink].is_some().then_some(levels)
    }

    /// One augmenting path along increasing levels (depth-first, resuming each vertex at the
    /// edge it stopped at): the flow pushed, 0 if none is left in this phase.
    fn push(
        &mut self,
        vertex: usize,
        sink: usize,
        limit: u64,
        levels: &[Option<usize>],
        next_edge: &mut [usize],
    ) -> u64 {
        if vertex == sink {
            return limit;
        }
        while next_edge[vertex] < self.adjacent[vertex].len() {
            let edge = self.adjacent[vertex][next_edge[vertex]];
            let Edge { to, capacity } = self.edges[edge];
            let deeper = matches!((levels[vertex], levels[to]), (Some(a), Some(b)) if b == a + 1);
            if capacity > 0 && deeper {
                let pushed = self.push(to, sink, limit.min(capacity), levels, next_edge);
                if pushed > 0 {
                    self.edges[edge].capacity -= pushed;
                    self.edges[edge ^ 1].capacity += pushed;
                    return pushed;
                }
            }
            next_edge[vertex] += 1;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bipartite_matching_finds_the_way_round_a_greedy_choice() {
        // 0 = source, 1..=2 left, 3..=4 right, 5 = sink. Left 1 reaches both right vertices,
        // left 2 only vertex 3: a greedy 1→3 would block 2; the flow reroutes.
        let mut graph = FlowGraph::new(6);
        graph.add_edge(0, 1, 1);
        graph.add_edge(0, 2, 1);
        let first = graph.add_edge(1, 3, 1);
        graph.add_edge(1, 4, 1);
        graph.add_edge(2, 3, 1);
        graph.add_edge(3, 5, 1);
        graph.add_edge(4, 5, 1);
        assert_eq!(graph.max_flow(0, 5, 10), 2);
        assert_eq!(graph.flow_on(first), 0);
    }

    #[test]
    fn the_flow_stops_at_what_is_wanted() {
        let mut graph = FlowGraph::new(2);
        let edge = graph.add_edge(0, 1, 7);
        assert_eq!(graph.max_flow(0, 1, 3), 3);
        assert_eq!(graph.flow_on(edge), 3);
        assert_eq!(graph.max_flow(0, 1, 10), 4);
    }
}
