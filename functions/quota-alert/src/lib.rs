//! quota-alert
