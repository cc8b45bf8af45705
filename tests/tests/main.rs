//! The black-box suite, one module a resource or concern, linked as one test binary: each
//! binary of its own would link the whole service again.

mod audit;
mod auth;
mod concurrency;
mod conditional;
mod cors;
mod event_delivery;
mod events;
mod examples;
mod hostile;
mod mail;
mod meta;
mod migrations;
mod moderation;
mod observability;
mod openapi;
mod paging;
mod posts;
mod profiles;
mod recovery;
mod replicas;
mod sessions;
mod users;
mod votes;
