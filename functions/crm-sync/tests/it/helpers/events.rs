//! Twilio events as Kinesis records carry them (built by the testkit's
//! `twilio_events_testkit::events`), and shuffled lifecycles.

use twilio_events_testkit::events::StatusEvent;

/// A small deterministic random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

pub fn message_sid(i: usize) -> String {
    format!("SM{i:032x}")
}

/// One status event of a message, as Twilio sends it, `millis` after the tests' epoch
/// (2024-05-01T10:00:00Z); the Kinesis sink's `data` is a JSON string when `as_string`.
pub fn message_event(sid: &str, status: &str, millis: u64, as_string: bool) -> Vec<u8> {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(
        (1_714_557_600_000u64 + millis) as i128 * 1_000_000,
    )
    .unwrap()
    .format(&time::format_description::well_known::Rfc3339)
    .unwrap();
    StatusEvent::message(sid, status)
        .at(&time)
        .data_as_string(as_string)
        .to_bytes()
}

/// The rank docs/twilio.md §5 gives the statuses used here.
pub fn rank(status: &str) -> u8 {
    match status {
        "queued" => 2,
        "sent" => 4,
        "delivered" | "undelivered" | "failed" => 6,
        "read" => 7,
        other => panic!("{other}"),
    }
}

/// The lifecycles the tests draw from: (status, milliseconds after the epoch of the test).
pub fn lifecycle(i: usize) -> Vec<(&'static str, u64)> {
    let t = (i as u64) * 10;
    match i % 6 {
        0 => vec![
            ("queued", t),
            ("sent", t + 1),
            ("delivered", t + 2),
            ("read", t + 3),
        ],
        1 => vec![("queued", t), ("sent", t + 1), ("delivered", t + 2)],
        2 => vec![("queued", t), ("sent", t + 1), ("undelivered", t + 2)],
        3 => vec![("queued", t), ("failed", t + 1)],
        // Two terminal statuses of equal rank: the later one wins.
        4 => vec![
            ("queued", t),
            ("sent", t + 1),
            ("delivered", t + 2),
            ("undelivered", t + 4),
        ],
        _ => vec![
            ("queued", t),
            ("sent", t + 1),
            ("failed", t + 2),
            ("read", t + 3),
        ],
    }
}

/// The status a resource must end at: the highest rank, then the latest time.
pub fn final_status(steps: &[(&'static str, u64)]) -> &'static str {
    steps.iter().max_by_key(|(s, t)| (rank(s), *t)).unwrap().0
}

/// How many writes a forward-only consumer makes for events in this order: the strict
/// running maxima of (rank, time).
pub fn forward_moves(order: &[(&'static str, u64)]) -> usize {
    let mut best: Option<(u8, u64)> = None;
    order
        .iter()
        .filter(|(s, t)| {
            let key = (rank(s), *t);
            let ahead = best.is_none_or(|b| key > b);
            if ahead {
                best = Some(key);
            }
            ahead
        })
        .count()
}
