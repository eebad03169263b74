//! Which connections need attention, so the stack's per-packet and per-turn work grows with the
//! connections that are doing something rather than with all it holds (10,000 idle keep-alive
//! connections must not slow down the one download).
//!
//! * The ready set: connections that may have a segment to send. A connection joins it whenever
//!   something happened to it (a segment, an ICMP error, an application call, a timer, its
//!   creation) and leaves it once `poll_transmit` says it has nothing. It is served round-robin
//!   from a cursor in `ConnId` order, which is exactly the order the stack used when it scanned
//!   every connection (a connection outside the set would have answered `None`), so which
//!   connection sends when is unchanged.
//! * The timer heap: a min-heap of (deadline, connection) with lazy invalidation. Each
//!   connection's [`Slot`] records the deadline the heap knows; a heap entry is current only
//!   while it matches, so a changed deadline is one push and old entries are skipped when they
//!   surface (or dropped when the heap is rebuilt).
//! * The doomed list: connections that were seen closed, the only ones reaping has to look at.
//!
//! Nothing here knows about `Connection`: the stack tells it what happened and reads back ids.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Instant;

use super::ConnId;

/// A connection's bookkeeping in the schedule, kept in the stack's entry for it.
#[derive(Debug, Default, Clone)]
pub(super) struct Slot {
    /// In the ready set.
    queued: bool,
    /// The deadline the timer heap holds a current entry for.
    deadline: Option<Instant>,
    /// On the doomed list.
    doomed: bool,
}

impl Slot {
    /// The deadline the heap knows for this connection.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True while the connection is in the ready set.
    #[cfg(any(test, feature = "testing"))]
    pub(super) fn is_queued(&self) -> bool {
        self.queued
    }
}

/// Heap entries allowed beyond this many per live connection before the heap is rebuilt.
const HEAP_SLACK_FACTOR: usize = 4;
/// ... plus this many, so tiny stacks do not rebuild all the time.
const HEAP_SLACK_MIN: usize = 64;

/// The ready set, the timer heap and the doomed list (see the module documentation).
#[derive(Debug)]
pub(super) struct Schedule {
    ready: BTreeSet<ConnId>,
    /// Where the next round-robin pass starts: the first ready connection at or after it.
    cursor: ConnId,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    doomed: Vec<ConnId>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            ready: BTreeSet::new(),
            cursor: ConnId(0),
            timers: BinaryHeap::new(),
            doomed: Vec::new(),
        }
    }
}

impl Schedule {
    /// Something happened to `id` that may make it want to send: it joins the ready set (once).
    pub(super) fn wake(&mut self, id: ConnId, slot: &mut Slot) {
        if !slot.queued {
            slot.queued = true;
            self.ready.insert(id);
        }
    }

    /// `id` answered `poll_transmit` with nothing: it leaves the ready set until woken.
    pub(super) fn idle(&mut self, id: ConnId, slot: &mut Slot) {
        slot.queued = false;
        self.ready.remove(&id);
    }

    /// The ready connection to poll next: the first at or after the cursor, else the first.
    pub(super) fn next_ready(&self) -> Option<ConnId> {
        self.ready
            .range(self.cursor..)
            .next()
            .or_else(|| self.ready.first())
            .copied()
    }

    /// `id` sent a segment: the next pass starts after it, or from the beginning when it is
    /// the newest connection (`last`), as a scan over all connections would wrap around.
    pub(super) fn sent(&mut self, id: ConnId, last: bool) {
        self.cursor = if last { ConnId(0) } else { ConnId(id.0 + 1) };
    }

    /// Connections were removed: the next pass starts from the beginning (as it always has).
    pub(super) fn rewind(&mut self) {
        self.cursor = ConnId(0);
    }

    /// Records `deadline` as `id`'s next timer; a changed one gets a heap entry.
    pub(super) fn set_deadline(&mut self, id: ConnId, slot: &mut Slot, deadline: Option<Instant>) {
        if slot.deadline == deadline {
            return;
        }
        slot.deadline = deadline;
        if let Some(at) = deadline {
            self.timers.push(Reverse((at, id)));
        }
    }

    /// Drops stale entries from the top of the heap, so [`Schedule::next_deadline`] can peek.
    /// `deadline_of` gives the deadline recorded in a connection's slot (`None` when gone).
    pub(super) fn clean(&mut self, deadline_of: impl Fn(ConnId) -> Option<Instant>) {
        while let Some(Reverse((at, id))) = self.timers.peek() {
            if deadline_of(*id) == Some(*at) {
                break;
            }
            self.timers.pop();
        }
    }

    /// The earliest deadline, once the heap was cleaned.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes every current entry due at `now` off the heap and returns their connections in
    /// `ConnId` order, each once. The caller fires them and calls [`Schedule::fired`] on each
    /// before recording its new deadline.
    pub(super) fn due(
        &mut self,
        now: Instant,
        deadline_of: impl Fn(ConnId) -> Option<Instant>,
    ) -> Vec<ConnId> {
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = self.timers.peek() {
            if *at > now {
                break;
            }
            if deadline_of(*id) == Some(*at) {
                due.push(*id);
            }
            self.timers.pop();
        }
        due.sort_unstable();
        due.dedup();
        due
    }

    /// `id`'s heap entries were taken by [`Schedule::due`]: it has none now.
    pub(super) fn fired(&mut self, slot: &mut Slot) {
        slot.deadline = None;
    }

    /// True when stale entries have piled up beyond the slack for `live` connections.
    pub(super) fn needs_rebuild(&self, live: usize) -> bool {
        self.timers.len() > HEAP_SLACK_FACTOR * live + HEAP_SLACK_MIN
    }

    /// Replaces the heap by one entry per connection with a deadline (as recorded in slots).
    pub(super) fn rebuild(&mut self, live: impl Iterator<Item = (ConnId, Instant)>) {
        self.timers = live.map(|(id, at)| Reverse((at, id))).collect();
    }

    /// Heap entries, stale ones included.
    #[cfg(any(test, feature = "testing"))]
    pub(super) fn heap_len(&self) -> usize {
        self.timers.len()
    }

    /// `id` was seen closed: reaping should look at it (once until [`Schedule::take_doomed`]).
    pub(super) fn doom(&mut self, id: ConnId, slot: &mut Slot) {
        if !slot.doomed {
            slot.doomed = true;
            self.doomed.push(id);
        }
    }

    /// The connections to look at when reaping; each one's slot must get
    /// [`Schedule::undoom`] (or the connection be removed).
    pub(super) fn take_doomed(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.doomed)
    }

    /// `id` was looked at and stays: it may be doomed again.
    pub(super) fn undoom(&mut self, slot: &mut Slot) {
        slot.doomed = false;
    }

    /// True when `id` is on the doomed list.
    #[cfg(any(test, feature = "testing"))]
    pub(super) fn is_doomed(&self, slot: &Slot) -> bool {
        slot.doomed
    }

    /// `id` is gone: it leaves the ready set (its heap entries go stale by themselves).
    pub(super) fn forget(&mut self, id: ConnId, slot: &Slot) {
        if slot.queued {
            self.ready.remove(&id);
        }
    }

    /// Connections in the ready set.
    #[cfg(test)]
    pub(super) fn ready_len(&self) -> usize {
        self.ready.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    /// A schedule with slots for connections 1..=n.
    fn setup(n: u64) -> (Schedule, HashMap<ConnId, Slot>) {
        let slots = (1..=n).map(|i| (ConnId(i), Slot::default())).collect();
        (Schedule::default(), slots)
    }

    /// Serves the ready set the way the stack does: `wants(id)` says whether `id` sends.
    fn serve(
        sched: &mut Schedule,
        slots: &mut HashMap<ConnId, Slot>,
        last: ConnId,
        mut wants: impl FnMut(ConnId) -> bool,
    ) -> Option<ConnId> {
        while let Some(id) = sched.next_ready() {
            if wants(id) {
                sched.sent(id, id == last);
                return Some(id);
            }
            sched.idle(id, slots.get_mut(&id).unwrap());
        }
        None
    }

    #[test]
    fn ready_set_is_served_round_robin_in_id_order() {
        let (mut sched, mut slots) = setup(5);
        for i in [4, 2, 5] {
            sched.wake(ConnId(i), slots.get_mut(&ConnId(i)).unwrap());
        }
        // Waking twice changes nothing.
        sched.wake(ConnId(2), slots.get_mut(&ConnId(2)).unwrap());
        assert_eq!(sched.ready_len(), 3);
        let last = ConnId(5);
        let order: Vec<_> = (0..6)
            .map(|_| serve(&mut sched, &mut slots, last, |_| true).unwrap().0)
            .collect();
        assert_eq!(order, [2, 4, 5, 2, 4, 5]);
        // 4 has nothing more: it leaves the set, the others keep alternating.
        let order: Vec<_> = (0..4)
            .map(|_| {
                serve(&mut sched, &mut slots, last, |id| id != ConnId(4))
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(order, [2, 5, 2, 5]);
        assert!(!slots[&ConnId(4)].is_queued());
        assert_eq!(serve(&mut sched, &mut slots, last, |_| false), None);
        assert_eq!(sched.ready_len(), 0);
        assert!(slots.values().all(|s| !s.is_queued()));
    }

    #[test]
    fn cursor_wraps_after_the_newest_connection_like_a_full_scan() {
        let (mut sched, mut slots) = setup(3);
        for i in 1..=3 {
            sched.wake(ConnId(i), slots.get_mut(&ConnId(i)).unwrap());
        }
        assert_eq!(
            serve(&mut sched, &mut slots, ConnId(3), |_| true),
            Some(ConnId(1))
        );
        assert_eq!(
            serve(&mut sched, &mut slots, ConnId(3), |_| true),
            Some(ConnId(2))
        );
        assert_eq!(
            serve(&mut sched, &mut slots, ConnId(3), |_| true),
            Some(ConnId(3))
        );
        // 3 was the newest: a scan wraps to the start, so connection 4 created now waits for
        // 1 and 2 (a cursor left at "after 3" would serve it first).
        slots.insert(ConnId(4), Slot::default());
        sched.wake(ConnId(4), slots.get_mut(&ConnId(4)).unwrap());
        let order: Vec<_> = (0..4)
            .map(|_| {
                serve(&mut sched, &mut slots, ConnId(4), |_| true)
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(order, [1, 2, 3, 4]);
        sched.rewind();
        assert_eq!(sched.next_ready(), Some(ConnId(1)));
    }

    #[test]
    fn timer_heap_skips_stale_entries_and_fires_in_id_order() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let (mut sched, mut slots) = setup(3);
        let deadline_of = |slots: &HashMap<ConnId, Slot>| {
            let view: HashMap<ConnId, Option<Instant>> =
                slots.iter().map(|(id, s)| (*id, s.deadline())).collect();
            move |id: ConnId| view.get(&id).copied().flatten()
        };
        sched.set_deadline(ConnId(1), slots.get_mut(&ConnId(1)).unwrap(), Some(at(10)));
        sched.set_deadline(ConnId(2), slots.get_mut(&ConnId(2)).unwrap(), Some(at(30)));
        sched.set_deadline(ConnId(3), slots.get_mut(&ConnId(3)).unwrap(), Some(at(20)));
        // An unchanged deadline is no new entry.
        sched.set_deadline(ConnId(3), slots.get_mut(&ConnId(3)).unwrap(), Some(at(20)));
        assert_eq!(sched.heap_len(), 3);
        sched.clean(deadline_of(&slots));
        assert_eq!(sched.next_deadline(), Some(at(10)));
        // 1 moves later: its old entry is stale and surfaces no more.
        sched.set_deadline(ConnId(1), slots.get_mut(&ConnId(1)).unwrap(), Some(at(40)));
        sched.clean(deadline_of(&slots));
        assert_eq!(sched.next_deadline(), Some(at(20)));
        assert_eq!(sched.heap_len(), 3, "the stale entry was popped");
        // 3 stops its timer.
        sched.set_deadline(ConnId(3), slots.get_mut(&ConnId(3)).unwrap(), None);
        sched.clean(deadline_of(&slots));
        assert_eq!(sched.next_deadline(), Some(at(30)));
        // Nothing due before 30; at 45 both 2 and 1, in id order, each once.
        assert!(sched.due(at(29), deadline_of(&slots)).is_empty());
        sched.set_deadline(ConnId(1), slots.get_mut(&ConnId(1)).unwrap(), Some(at(5)));
        sched.set_deadline(ConnId(1), slots.get_mut(&ConnId(1)).unwrap(), Some(at(40)));
        assert_eq!(
            sched.due(at(45), deadline_of(&slots)),
            [ConnId(1), ConnId(2)]
        );
        assert_eq!(sched.heap_len(), 0);
        for i in [1, 2] {
            let slot = slots.get_mut(&ConnId(i)).unwrap();
            sched.fired(slot);
            assert_eq!(slot.deadline(), None);
        }
        // After firing, a new deadline equal to nothing recorded gets an entry again.
        sched.set_deadline(ConnId(2), slots.get_mut(&ConnId(2)).unwrap(), Some(at(90)));
        sched.clean(deadline_of(&slots));
        assert_eq!(sched.next_deadline(), Some(at(90)));
    }

    #[test]
    fn timer_heap_is_rebuilt_when_stale_entries_pile_up() {
        let t0 = Instant::now();
        let (mut sched, mut slots) = setup(2);
        // A deadline that only moves later leaves a stale entry per move below the top.
        let slot = slots.get_mut(&ConnId(2)).unwrap();
        sched.set_deadline(ConnId(2), slot, Some(t0));
        for ms in 1..=(HEAP_SLACK_FACTOR * 2 + HEAP_SLACK_MIN) as u64 {
            sched.set_deadline(ConnId(2), slot, Some(t0 + Duration::from_millis(ms)));
        }
        assert!(sched.needs_rebuild(2));
        let live = slots
            .iter()
            .filter_map(|(id, s)| s.deadline().map(|at| (*id, at)));
        sched.rebuild(live);
        assert_eq!(sched.heap_len(), 1);
        assert!(!sched.needs_rebuild(2));
        let last = t0 + Duration::from_millis((HEAP_SLACK_FACTOR * 2 + HEAP_SLACK_MIN) as u64);
        assert_eq!(sched.next_deadline(), Some(last));
    }

    #[test]
    fn doomed_list_holds_each_connection_once() {
        let (mut sched, mut slots) = setup(2);
        for _ in 0..3 {
            sched.doom(ConnId(1), slots.get_mut(&ConnId(1)).unwrap());
        }
        sched.doom(ConnId(2), slots.get_mut(&ConnId(2)).unwrap());
        assert_eq!(sched.take_doomed(), [ConnId(1), ConnId(2)]);
        assert!(sched.take_doomed().is_empty());
        // 1 was looked at and stays: it can be doomed again later.
        sched.undoom(slots.get_mut(&ConnId(1)).unwrap());
        sched.doom(ConnId(1), slots.get_mut(&ConnId(1)).unwrap());
        assert_eq!(sched.take_doomed(), [ConnId(1)]);
    }
}
