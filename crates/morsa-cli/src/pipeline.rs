//! Work on several items at once, bounded in count and in weight (bytes), with the results
//! handed back in the items' order: how `morsa store` stores many files.

use std::future::Future;
use std::sync::Arc;

use futures_util::{Stream, StreamExt as _};
use tokio::sync::Semaphore;

/// How much may be in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Items at once (at least 1).
    pub jobs: usize,
    /// Units of weight in flight together; an item heavier than this runs alone.
    pub budget: u32,
}

/// `work` applied to every item, at most `limits.jobs` at once and at most `limits.budget`
/// units of `weight` together, its outputs in the order of `items`. Admission is first come,
/// first served: a heavy item waits for the lighter ones before it and holds back those after.
pub fn in_order<'a, I, T, Fut>(
    items: Vec<I>,
    limits: Limits,
    weight: impl Fn(&I) -> u32 + 'a,
    work: impl Fn(I) -> Fut + 'a,
) -> impl Stream<Item = T> + 'a
where
    I: 'a,
    Fut: Future<Output = T> + 'a,
{
    let budget = limits.budget.max(1);
    let permits = Arc::new(Semaphore::new(usize::try_from(budget).unwrap_or(usize::MAX)));
    futures_util::stream::iter(items)
        .map(move |item| {
            let needed = weight(&item).clamp(1, budget);
            let permits = Arc::clone(&permits);
            let work = work(item);
            async move {
                // The semaphore is never closed, so this always holds a permit.
                let _held = permits.acquire_many_owned(needed).await.ok();
                work.await
            }
        })
        .buffered(limits.jobs.max(1))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Runs `in_order` over items given as weights; each item's work yields until every
    /// admitted item has started, so all that may run together do. Returns the outputs and
    /// the largest count and weight seen in flight.
    fn run(weights: Vec<u32>, limits: Limits) -> (Vec<usize>, usize, u32) {
        let state = Arc::new(Mutex::new((0usize, 0u32, 0usize, 0u32)));
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let items: Vec<(usize, u32)> = weights.into_iter().enumerate().collect();
        let outputs = runtime.block_on({
            let state = Arc::clone(&state);
            in_order(
                items,
                limits,
                |&(_, weight)| weight,
                move |(index, weight)| {
                    let state = Arc::clone(&state);
                    async move {
                        {
                            let mut state = state.lock().unwrap();
                            state.0 += 1;
                            state.1 += weight.clamp(1, limits.budget);
                            state.2 = state.2.max(state.0);
                            state.3 = state.3.max(state.1);
                        }
                        // Later-numbered items finish first, so the order must be restored.
                        for _ in 0..(20 - index % 20) {
                            tokio::task::yield_now().await;
                        }
                        let mut state = state.lock().unwrap();
                        state.0 -= 1;
                        state.1 -= weight.clamp(1, limits.budget);
                        index
                    }
                },
            )
            .collect::<Vec<_>>()
        });
        let state = state.lock().unwrap();
        (outputs, state.2, state.3)
    }

    #[test]
    fn small_items_run_jobs_at_once_and_come_back_in_order() {
        let (outputs, most, _) = run(vec![1; 40], Limits { jobs: 8, budget: 64 });
        assert_eq!(outputs, (0..40).collect::<Vec<_>>());
        assert_eq!(most, 8, "eight small items should have been in flight together");
    }

    #[test]
    fn the_weight_budget_bounds_what_runs_together() {
        let (outputs, most, heaviest) = run(vec![20; 12], Limits { jobs: 8, budget: 64 });
        assert_eq!(outputs, (0..12).collect::<Vec<_>>());
        assert_eq!(most, 3, "three items of 20 fit a budget of 64, a fourth does not");
        assert!(heaviest <= 64);
    }

    #[test]
    fn an_item_heavier_than_the_budget_runs_alone() {
        let (outputs, most, _) = run(vec![1000, 1000, 1000], Limits { jobs: 8, budget: 64 });
        assert_eq!(outputs, vec![0, 1, 2]);
        assert_eq!(most, 1);
    }

    #[test]
    fn one_job_runs_one_item_at_a_time() {
        let (outputs, most, _) = run(vec![1; 10], Limits { jobs: 1, budget: 64 });
        assert_eq!(outputs, (0..10).collect::<Vec<_>>());
        assert_eq!(most, 1);
    }
}
