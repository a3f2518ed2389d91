//! crm-sync
