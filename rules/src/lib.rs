//! `fleet-rules`: Fleet's alert rules. Pure: no I/O, no clock. The collector evaluates them every
//! second; `fleetctl rules check` validates a file with the same code.
//!
//! Layout:
//! - [`parse`]: the rules file (TOML `[[rule]]` tables), [`parse_rules`] and its errors, which
//!   name the file, the rule and the field.
//! - [`eval`]: the snapshot the collector builds ([`FleetView`], [`HostView`]) and
//!   [`evaluate`], which returns a [`Finding`] for each alert whose condition holds now.
//! - [`alerts`]: [`AlertBook`], the pending → firing → resolved state machine fed with those
//!   findings, and its JSON encoding for restarts.
//!
//! ```
//! use fleet_rules::{evaluate, parse_rules, AlertBook, FleetView};
//!
//! let rules = parse_rules(
//!     "[[rule]]\nname = \"silent\"\nkind = \"host_silent\"\nfor = \"2m\"\n",
//!     "rules.toml",
//! )
//! .unwrap();
//! let mut book = AlertBook::new();
//! let view = FleetView { now_ms: 1_700_000_000_000, hosts: vec![] };
//! let transitions = book.step(&rules, evaluate(&rules, &view), view.now_ms);
//! assert!(transitions.is_empty());
//! ```
//!
//! The rules file reference is in the README ("Alert rules"); `deploy/rules/default.toml` is a
//! tested example.

pub mod alerts;
pub mod eval;
pub mod parse;

pub use alerts::{
    Alert, AlertBook, AlertKey, AlertState, DecodeError, Scope, Transition, UnknownState,
    RESOLVED_RETENTION_MS,
};
pub use eval::{best_source, evaluate, host_offset_ms, Finding, FleetView, HostView};
pub use parse::{
    parse_rules, CmpOp, Condition, Problem, Rule, RuleKind, RuleRef, RuleSet, RulesError,
    SarCondition,
};

#[cfg(test)]
mod tests;
