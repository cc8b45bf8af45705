//! The `api` binary run as a process, as cargo builds it for these tests: its command line,
//! its logs, and the faults a machine and a database have. One test binary, so that the
//! workspace links one for all of them.

mod cli;
mod logs;
mod mail;
mod process;
mod streams;
mod support;
