//! The child-process helper (`common::child`) itself: what a child changes stays in the
//! child, and a child that fails (or runs no test) fails its parent.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::common::child;

/// Set only in the children of these tests.
const GIVEN: &str = "ACTIX_ZAP_ISOLATION_GIVEN";
/// Set by a child's body.
const SET_BY_CHILD: &str = "ACTIX_ZAP_ISOLATION_SET_BY_CHILD";

#[test]
fn environment_given_to_or_set_in_a_child_stays_in_the_child() {
    const NAME: &str = "isolation::environment_given_to_or_set_in_a_child_stays_in_the_child";
    if child::in_child(NAME) {
        assert_eq!(std::env::var(GIVEN).as_deref(), Ok("from-the-parent"));
        std::env::set_var(SET_BY_CHILD, "1");
        assert_eq!(std::env::var(SET_BY_CHILD).as_deref(), Ok("1"));
        return;
    }
    child::run_in_child(NAME, &[(GIVEN, "from-the-parent")]);
    assert!(
        std::env::var_os(GIVEN).is_none(),
        "{GIVEN} reached the parent"
    );
    assert!(
        std::env::var_os(SET_BY_CHILD).is_none(),
        "{SET_BY_CHILD} reached the parent"
    );
}

#[test]
fn the_body_runs_in_the_child_only() {
    child::isolated(
        "isolation::the_body_runs_in_the_child_only",
        &[(GIVEN, "isolated")],
        || {
            assert!(std::env::var_os(child::MARKER).is_some());
            assert_eq!(std::env::var(GIVEN).as_deref(), Ok("isolated"));
        },
    );
    // Runs in both processes: the marker is in the child's environment only.
    assert_eq!(
        std::env::var_os(GIVEN).is_some(),
        std::env::var_os(child::MARKER).is_some()
    );
}

#[test]
fn a_failing_child_fails_the_parent() {
    const NAME: &str = "isolation::a_failing_child_fails_the_parent";
    if child::in_child(NAME) {
        panic!("deliberate failure in the child");
    }
    let failed = catch_unwind(AssertUnwindSafe(|| child::run_in_child(NAME, &[])));
    let message = failed.expect_err("the parent passed though its child failed");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(message.contains("failed"), "{message}");
}

#[test]
fn a_child_that_runs_no_test_fails_the_parent() {
    let failed = catch_unwind(|| child::run_in_child("isolation::no_such_test", &[]));
    let message = failed.expect_err("the parent passed though its child ran nothing");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(message.contains("did not run exactly"), "{message}");
}

#[test]
fn isolated_refuses_a_name_that_is_not_the_callers() {
    let failed = catch_unwind(|| child::isolated("isolation::some_other_test", &[], || {}));
    let message = failed.expect_err("isolated accepted another test's name");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("the calling test's full name"),
        "{message}"
    );
}
