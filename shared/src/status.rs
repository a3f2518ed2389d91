//! Delivery statuses and their precedence (docs/twilio.md §5), so that a status never goes backwards.
//!
//! Ranks only order statuses of one kind; equal ranks are broken by event time by the caller.

use std::fmt;

/// A message's status, from the event type or `messageStatus` (Twilio sends it in capitals).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Canceled,
    Read,
    PartiallyDelivered,
    Receiving,
    Received,
    /// A status this version does not know; it passes through with no rank.
    Other(String),
}

impl MessageStatus {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "accepted" => Self::Accepted,
            "scheduled" => Self::Scheduled,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "failed" => Self::Failed,
            "canceled" | "cancelled" => Self::Canceled,
            "read" => Self::Read,
            "partially_delivered" | "partially-delivered" => Self::PartiallyDelivered,
            "receiving" => Self::Receiving,
            "received" => Self::Received,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Lowercase, as Twilio's REST API spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Read => "read",
            Self::PartiallyDelivered => "partially_delivered",
            Self::Receiving => "receiving",
            Self::Received => "received",
            Self::Other(s) => s,
        }
    }

    /// Precedence of outbound statuses: accepted/scheduled < queued < sending < sent <
    /// delivered = undelivered = failed = canceled (terminal; ties go to the later event) < read.
    /// `None` for statuses that are not part of an outbound lifecycle.
    pub fn rank(&self) -> Option<u8> {
        Some(match self {
            Self::Accepted | Self::Scheduled => 1,
            Self::Queued => 2,
            Self::Sending => 3,
            Self::Sent => 4,
            Self::PartiallyDelivered => 5,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Canceled => 6,
            Self::Read => 7,
            Self::Receiving | Self::Received | Self::Other(_) => return None,
        })
    }

    /// Whether no later status is expected (docs/twilio.md §5): delivered, undelivered, failed,
    /// canceled, read. `read` may still follow `delivered` on channels with read receipts; a
    /// reconciliation that stops at `delivered` misses nothing a delivery report needs. `sent`
    /// is not final, although a message may rest in it for ever when the carrier returns no
    /// receipt.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Canceled | Self::Read
        )
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call's status, from the event type or `CallStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Answered,
    Completed,
    Busy,
    NoAnswer,
    Canceled,
    Failed,
    Other(String),
}

impl CallStatus {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "queued" => Self::Queued,
            "initiated" => Self::Initiated,
            "ringing" => Self::Ringing,
            "in-progress" | "in_progress" => Self::InProgress,
            "answered" => Self::Answered,
            "completed" => Self::Completed,
            "busy" => Self::Busy,
            "no-answer" | "no_answer" => Self::NoAnswer,
            "canceled" | "cancelled" => Self::Canceled,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Queued => "queued",
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Answered => "answered",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Canceled => "canceled",
            Self::Failed => "failed",
            Self::Other(s) => s,
        }
    }

    /// queued/initiated < ringing < in-progress/answered < terminal.
    pub fn rank(&self) -> Option<u8> {
        Some(match self {
            Self::Queued | Self::Initiated => 1,
            Self::Ringing => 2,
            Self::InProgress | Self::Answered => 3,
            Self::Completed | Self::Busy | Self::NoAnswer | Self::Canceled | Self::Failed => 4,
            Self::Other(_) => return None,
        })
    }

    /// Whether the call has ended: completed, busy, no-answer, canceled, failed.
    pub fn is_final(&self) -> bool {
        self.rank() == Some(4)
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_sent_never_outranks_a_final_message_status() {
        let sent = MessageStatus::parse("SENT").rank();
        for later in ["delivered", "failed", "undelivered", "read", "canceled"] {
            assert!(MessageStatus::parse(later).rank() > sent, "{later}");
        }
        assert!(MessageStatus::Read.rank() > MessageStatus::Delivered.rank());
        assert!(MessageStatus::Queued.rank() > MessageStatus::Accepted.rank());
        assert_eq!(MessageStatus::parse("weird").rank(), None);
        assert_eq!(MessageStatus::parse("QUEUED").as_str(), "queued");
    }

    #[test]
    fn final_statuses_are_the_ends_of_each_lifecycle() {
        for end in ["delivered", "undelivered", "failed", "canceled", "read"] {
            assert!(MessageStatus::parse(end).is_final(), "{end}");
        }
        for open in [
            "accepted",
            "queued",
            "sending",
            "sent",
            "partially_delivered",
        ] {
            assert!(!MessageStatus::parse(open).is_final(), "{open}");
        }
        for end in ["completed", "busy", "no-answer", "canceled", "failed"] {
            assert!(CallStatus::parse(end).is_final(), "{end}");
        }
        for open in ["queued", "initiated", "ringing", "in-progress"] {
            assert!(!CallStatus::parse(open).is_final(), "{open}");
        }
    }

    #[test]
    fn call_statuses_move_forward_to_a_terminal_state() {
        let order = ["initiated", "ringing", "in-progress", "completed"];
        let ranks: Vec<_> = order.iter().map(|s| CallStatus::parse(s).rank()).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
        assert_eq!(
            CallStatus::parse("answered").rank(),
            CallStatus::InProgress.rank()
        );
        assert_eq!(
            CallStatus::parse("no-answer").rank(),
            CallStatus::Busy.rank()
        );
    }
}
