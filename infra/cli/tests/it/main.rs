//! The `twilio-events` command line run as a user runs it: real processes, real HTTP.

mod classic;
mod cli;
mod console;
mod hardening;
mod helpers;
mod kafka;
mod prism;
mod reconcile;
mod replay;
mod serve;
mod serve_limits;
mod setup;
mod simulate;
mod twilio_rest;
mod webdriver;
