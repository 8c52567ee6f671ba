//! Hundreds of researchers at once against fewer VMs: every invariant is checked in the
//! database afterwards.

use std::collections::{HashMap, HashSet};

use crate::helpers::{crd_command, spawn_app, spawn_app_on_sqlite, RequestOutcome, TestApp};

async fn rush(app: &TestApp, vms: usize, researchers: usize, repeat_every: usize) {
    app.free_vms(vms).await;
    // Some researchers press the button twice, at the same time.
    let emails: Vec<String> = (0..researchers)
        .map(|i| {
            let person = if i % repeat_every == 0 && i > 0 {
                i - 1
            } else {
                i
            };
            format!("researcher{person}@example.org")
        })
        .collect();
    let requests = emails.iter().map(|email| {
        let command = crd_command(email);
        async move { (email.clone(), app.request_vm(email, &command).await) }
    });
    let outcomes = futures_util::future::join_all(requests).await;

    let people: HashSet<&String> = emails.iter().collect();
    let stored = app.vms();
    let mut holder_of: HashMap<String, (String, String)> = HashMap::new();
    for vm in &stored {
        if let Some(email) = &vm.user_email {
            let previous = holder_of.insert(
                email.clone(),
                (vm.hostname.clone(), vm.pin.clone().unwrap_or_default()),
            );
            assert!(previous.is_none(), "{email} holds two VMs");
        }
    }
    let assigned = holder_of.len();
    assert_eq!(
        assigned,
        vms.min(people.len()),
        "a VM stayed free while people asked"
    );

    let mut refused = 0;
    for (email, outcome) in &outcomes {
        match outcome {
            RequestOutcome::Assigned { hostname, pin } => {
                assert_eq!(
                    holder_of.get(email),
                    Some(&(hostname.clone(), pin.clone())),
                    "the page told {email} something the database does not hold"
                );
            }
            RequestOutcome::Refused { status, error } => {
                assert_eq!(*status, 503, "{email}: {error}");
                assert!(
                    !holder_of.contains_key(email),
                    "{email} was refused but holds a VM"
                );
                refused += 1;
            }
        }
    }
    // Refusals happen only once every VM is taken.
    if refused > 0 {
        assert_eq!(assigned, vms, "someone was refused while a VM was free");
    }
}

#[actix_web::test]
async fn a_rush_on_postgres_keeps_every_invariant() {
    rush(&spawn_app().await, 40, 300, 25).await;
}

#[actix_web::test]
async fn a_rush_on_sqlite_keeps_every_invariant() {
    rush(&spawn_app_on_sqlite().await, 20, 120, 15).await;
}

#[actix_web::test]
async fn as_many_researchers_as_vms_all_get_one() {
    rush(&spawn_app().await, 50, 50, usize::MAX).await;
}
