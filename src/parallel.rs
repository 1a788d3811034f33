//! Per-item work over thousands of items (manifest files, jobs) on every
//! core, with the items' order kept.

/// Runs `work` on contiguous chunks of `items`, one scoped thread per
/// chunk (at most one per core, and none for fewer than `per_thread`
/// items), and returns the chunks' results in order. A panic in `work` is
/// resumed on the caller's thread.
pub fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    per_thread: usize,
    work: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len() / per_thread.max(1) + 1);
    if threads <= 1 {
        return vec![work(items)];
    }
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_item_in_order() {
        let items: Vec<u32> = (0..10_000).collect();
        let parts = map_chunks(&items, 64, <[u32]>::to_vec);
        assert_eq!(parts.concat(), items);
        assert_eq!(map_chunks(&items[..3], 64, <[u32]>::len), [3]);
        assert_eq!(map_chunks(&[] as &[u32], 64, <[u32]>::len), [0]);
    }
}
