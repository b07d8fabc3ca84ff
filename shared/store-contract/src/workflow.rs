//! The contract every [`WorkflowStore`] adapter passes. Run it with
//! [`workflow_contract_tests!`](crate::workflow_contract_tests) and a factory of
//! [`Fixture`](crate::Fixture)s.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use crossdesk_core::workflow::{
    AgentPreferences, ContactLinks, Handoff, LinkSuggestion, MergeOutcome, PersonalDataKind,
    Priority, SimilarTicket, TicketKind, TicketWorkflow, WorkflowQuery, WorkflowStore,
};
use crossdesk_core::{ChannelKind, ContactId, Identity, MessageId, TicketId};

/// Expands to one `#[test]` per workflow contract test, each on a fresh store from `$factory`
/// (a closure returning a future of a [`Fixture`](crate::Fixture)).
#[macro_export]
macro_rules! workflow_contract_tests {
    ($factory:expr) => {
        $crate::workflow_contract_tests!(@each $factory;
            unknown_keys_read_as_nothing,
            a_workflow_is_created_only_when_absent,
            a_workflow_reads_back_exactly,
            a_stale_version_loses,
            concurrent_saves_of_one_version_let_exactly_one_win,
            concurrent_creates_let_exactly_one_win,
            workflows_are_listed_by_contacts_most_recently_updated_first,
            due_workflows_are_listed_earliest_first_without_answered_ones,
            due_listing_follows_the_first_response,
            due_listing_combines_with_contacts,
            list_limit_is_clamped,
            merges_link_both_ways_and_unmerge_undoes_them,
            merges_refuse_what_merge_outcome_names,
            several_contacts_merge_into_one,
            concurrent_merges_of_one_source_merge_it_once,
            suggestions_are_recorded_both_ways_once,
            agent_preferences_round_trip_and_list,
            claim_window_is_won_exactly_once,
            cursors_are_stored_by_name,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run($factory, $crate::workflow::$name);
            }
        )*
    };
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

/// A fresh workflow of `contact`, last updated at `t(updated)`.
fn workflow(contact: &ContactId, updated: i64) -> TicketWorkflow {
    TicketWorkflow::new(
        TicketId::generate(),
        contact.clone(),
        ChannelKind::Facebook,
        t(updated),
    )
}

/// A fresh workflow of `contact` awaiting its first response, due at `t(due)`.
fn awaiting(contact: &ContactId, updated: i64, due: i64) -> TicketWorkflow {
    let mut w = workflow(contact, updated);
    w.sla.policy = Some("facebook/normal".into());
    w.sla.first_response_due = Some(t(due));
    w
}

async fn create(store: &Arc<dyn WorkflowStore>, w: &TicketWorkflow) {
    assert!(
        store.save_workflow(w, None).await.expect("save_workflow"),
        "a new workflow is created"
    );
}

async fn list(store: &Arc<dyn WorkflowStore>, query: WorkflowQuery) -> Vec<TicketId> {
    store
        .list_workflows(&query)
        .await
        .expect("list_workflows")
        .into_iter()
        .map(|w| w.ticket_id)
        .collect()
}

fn by_contacts(contacts: &[&ContactId]) -> WorkflowQuery {
    WorkflowQuery {
        contacts: contacts.iter().map(|c| (*c).clone()).collect(),
        first_response_due_before: None,
        limit: 50,
    }
}

fn due_before(seconds: i64) -> WorkflowQuery {
    WorkflowQuery {
        contacts: Vec::new(),
        first_response_due_before: Some(t(seconds)),
        limit: 50,
    }
}

async fn links(store: &Arc<dyn WorkflowStore>, contact: &ContactId) -> ContactLinks {
    store.contact_links(contact).await.expect("contact_links")
}

fn sorted(mut ids: Vec<ContactId>) -> Vec<ContactId> {
    ids.sort();
    ids
}

async fn merge(
    store: &Arc<dyn WorkflowStore>,
    source: &ContactId,
    target: &ContactId,
) -> MergeOutcome {
    store
        .merge_contacts(source, target, t(0))
        .await
        .expect("merge_contacts")
}

/// Nothing stored reads as nothing: no workflow, no links, no preferences, no cursor.
pub async fn unknown_keys_read_as_nothing(store: Arc<dyn WorkflowStore>) {
    assert_eq!(store.workflow(&TicketId::generate()).await.unwrap(), None);
    assert_eq!(
        links(&store, &ContactId::generate()).await,
        ContactLinks::default()
    );
    assert!(!store.unmerge_contact(&ContactId::generate()).await.unwrap());
    assert_eq!(store.agent_preferences("agent-1").await.unwrap(), None);
    assert!(store.list_agent_preferences().await.unwrap().is_empty());
    assert_eq!(store.cursor("twitter.mentions").await.unwrap(), None);
    assert!(list(&store, by_contacts(&[])).await.is_empty());
    assert!(list(&store, due_before(1_000)).await.is_empty());
}

/// Saving with no expected version creates the workflow at version 1, and only once.
pub async fn a_workflow_is_created_only_when_absent(store: Arc<dyn WorkflowStore>) {
    let contact = ContactId::generate();
    let w = workflow(&contact, 0);
    create(&store, &w).await;
    let stored = store.workflow(&w.ticket_id).await.unwrap().expect("stored");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.value, w);

    let mut other = w.clone();
    other.assignee = Some("agent-2".into());
    assert!(
        !store.save_workflow(&other, None).await.unwrap(),
        "one is stored already"
    );
    let stored = store.workflow(&w.ticket_id).await.unwrap().expect("stored");
    assert_eq!((stored.version, stored.value), (1, w));
}

/// Every field of a workflow reads back as written (times to the microsecond at least).
pub async fn a_workflow_reads_back_exactly(store: Arc<dyn WorkflowStore>) {
    let precise = |secs| t(secs) + TimeDelta::microseconds(123_456);
    let mut w = TicketWorkflow::new(
        TicketId::generate(),
        ContactId::generate(),
        ChannelKind::Twitter,
        precise(30),
    );
    w.kind = TicketKind::Monitoring;
    w.priority = Priority::Urgent;
    w.assignee = Some("agent-7".into());
    w.team = Some("billing".into());
    w.tags = BTreeSet::from(["refund".to_string(), "vip".to_string()]);
    w.personal_data = vec![
        PersonalDataKind::Iban,
        PersonalDataKind::Pattern("order_number".into()),
    ];
    w.handoff = Some(Handoff {
        at: precise(20),
        agent_id: "agent-7".into(),
        public_message: MessageId::generate(),
        private_message: MessageId::generate(),
    });
    w.sla.policy = Some("twitter/urgent".into());
    w.sla.first_response_due = Some(precise(600));
    w.sla.first_response_at = Some(precise(25));
    w.sla.resolved_at = Some(precise(29));
    w.sla.breach_raised_at = Some(precise(28));
    w.similar = vec![SimilarTicket {
        ticket_id: TicketId::generate(),
        subject: "Where is my refund? ✨".into(),
        score: 7.25,
    }];
    w.search_text = "refund order late".into();
    create(&store, &w).await;
    let stored = store.workflow(&w.ticket_id).await.unwrap().expect("stored");
    assert_eq!(stored.value, w);
}

/// A save names the version it read: it wins once; a save naming an older or a future version,
/// or naming a version of a workflow never stored, writes nothing.
pub async fn a_stale_version_loses(store: Arc<dyn WorkflowStore>) {
    let mut w = workflow(&ContactId::generate(), 0);
    create(&store, &w).await;
    w.priority = Priority::High;
    w.updated_at = t(10);
    assert!(store.save_workflow(&w, Some(1)).await.unwrap());
    let stored = store.workflow(&w.ticket_id).await.unwrap().expect("stored");
    assert_eq!((stored.version, &stored.value), (2, &w));

    let mut stale = w.clone();
    stale.priority = Priority::Low;
    assert!(
        !store.save_workflow(&stale, Some(1)).await.unwrap(),
        "stale"
    );
    assert!(
        !store.save_workflow(&stale, Some(3)).await.unwrap(),
        "future"
    );
    let stored = store.workflow(&w.ticket_id).await.unwrap().expect("stored");
    assert_eq!((stored.version, stored.value), (2, w));

    let never = workflow(&ContactId::generate(), 0);
    assert!(!store.save_workflow(&never, Some(1)).await.unwrap());
    assert_eq!(store.workflow(&never.ticket_id).await.unwrap(), None);
}

/// Eight agents saving over the same version at once: exactly one wins, and it is stored.
pub async fn concurrent_saves_of_one_version_let_exactly_one_win(store: Arc<dyn WorkflowStore>) {
    let w = workflow(&ContactId::generate(), 0);
    create(&store, &w).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let mut mine = w.clone();
            mine.assignee = Some(format!("agent-{i}"));
            mine.updated_at = t(i + 1);
            tokio::spawn(async move {
                let won = store.save_workflow(&mine, Some(1)).await.expect("save");
                (won, mine)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (won, mine) = task.await.expect("task");
        if won {
            winners.push(mine);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one save wins");
    let stored = store.workflow(&w.ticket_id).await.unwrap().expect("stored");
    assert_eq!((stored.version, &stored.value), (2, &winners[0]));
}

/// Eight writers creating the same ticket's workflow at once: exactly one creates it.
pub async fn concurrent_creates_let_exactly_one_win(store: Arc<dyn WorkflowStore>) {
    let w = workflow(&ContactId::generate(), 0);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let mut mine = w.clone();
            mine.team = Some(format!("team-{i}"));
            tokio::spawn(async move {
                let won = store.save_workflow(&mine, None).await.expect("save");
                (won, mine)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (won, mine) = task.await.expect("task");
        if won {
            winners.push(mine);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins");
    let stored = store.workflow(&w.ticket_id).await.unwrap().expect("stored");
    assert_eq!((stored.version, &stored.value), (1, &winners[0]));
}

/// Listing by contacts returns the tickets of any of them, most recently updated first; no
/// contacts lists everyone's; a contact without workflows lists none. A save that moves a
/// workflow's update time moves it in the list.
pub async fn workflows_are_listed_by_contacts_most_recently_updated_first(
    store: Arc<dyn WorkflowStore>,
) {
    let (a, b, c) = (
        ContactId::generate(),
        ContactId::generate(),
        ContactId::generate(),
    );
    let a1 = workflow(&a, 10);
    let a2 = workflow(&a, 30);
    let b1 = workflow(&b, 20);
    let c1 = workflow(&c, 40);
    for w in [&a1, &a2, &b1, &c1] {
        create(&store, w).await;
    }
    let ids = |ws: &[&TicketWorkflow]| ws.iter().map(|w| w.ticket_id.clone()).collect::<Vec<_>>();
    assert_eq!(
        list(&store, by_contacts(&[&a, &b])).await,
        ids(&[&a2, &b1, &a1])
    );
    assert_eq!(list(&store, by_contacts(&[&c])).await, ids(&[&c1]));
    assert_eq!(
        list(&store, by_contacts(&[])).await,
        ids(&[&c1, &a2, &b1, &a1])
    );
    assert!(list(&store, by_contacts(&[&ContactId::generate()]))
        .await
        .is_empty());

    let mut moved = a1.clone();
    moved.updated_at = t(50);
    assert!(store.save_workflow(&moved, Some(1)).await.unwrap());
    assert_eq!(
        list(&store, by_contacts(&[&a, &b])).await,
        ids(&[&a1, &a2, &b1])
    );
    let listed = store.list_workflows(&by_contacts(&[&a])).await.unwrap();
    assert_eq!(listed[0], moved, "lists the stored workflow");
}

/// Listing by due time returns the tickets still awaiting their first response due at or
/// before the bound, earliest due first; answered ones and ones with no due time are left out.
pub async fn due_workflows_are_listed_earliest_first_without_answered_ones(
    store: Arc<dyn WorkflowStore>,
) {
    let contact = ContactId::generate();
    let late = awaiting(&contact, 1, 100);
    let early = awaiting(&contact, 2, 50);
    let at_bound = awaiting(&contact, 3, 150);
    let after = awaiting(&contact, 4, 200);
    let mut answered = awaiting(&contact, 5, 10);
    answered.sla.first_response_at = Some(t(8));
    let no_policy = workflow(&contact, 6);
    for w in [&late, &early, &at_bound, &after, &answered, &no_policy] {
        create(&store, w).await;
    }
    assert_eq!(
        list(&store, due_before(150)).await,
        [
            early.ticket_id.clone(),
            late.ticket_id.clone(),
            at_bound.ticket_id.clone()
        ]
    );
    assert_eq!(
        list(&store, due_before(49)).await,
        Vec::<TicketId>::new(),
        "nothing due yet"
    );
    let listed = store.list_workflows(&due_before(60)).await.unwrap();
    assert_eq!(listed, [early], "lists the stored workflow");
}

/// Answering a ticket takes it out of the due listing; its due time moving moves it.
pub async fn due_listing_follows_the_first_response(store: Arc<dyn WorkflowStore>) {
    let contact = ContactId::generate();
    let mut first = awaiting(&contact, 0, 100);
    let second = awaiting(&contact, 0, 200);
    create(&store, &first).await;
    create(&store, &second).await;
    assert_eq!(
        list(&store, due_before(300)).await,
        [first.ticket_id.clone(), second.ticket_id.clone()]
    );

    first.sla.first_response_due = Some(t(250));
    first.updated_at = t(1);
    assert!(store.save_workflow(&first, Some(1)).await.unwrap());
    assert_eq!(
        list(&store, due_before(300)).await,
        [second.ticket_id.clone(), first.ticket_id.clone()],
        "moved by its new due time"
    );

    first.sla.first_response_at = Some(t(2));
    first.updated_at = t(2);
    assert!(store.save_workflow(&first, Some(2)).await.unwrap());
    assert_eq!(
        list(&store, due_before(300)).await,
        vec![second.ticket_id.clone()],
        "answered"
    );
    assert_eq!(
        list(&store, by_contacts(&[&contact])).await,
        [first.ticket_id.clone(), second.ticket_id.clone()],
        "still listed by contact"
    );
}

/// Contacts and a due time together list the due tickets of those contacts only.
pub async fn due_listing_combines_with_contacts(store: Arc<dyn WorkflowStore>) {
    let (a, b) = (ContactId::generate(), ContactId::generate());
    let a1 = awaiting(&a, 0, 20);
    let b1 = awaiting(&b, 0, 10);
    let a2 = awaiting(&a, 0, 5);
    for w in [&a1, &b1, &a2] {
        create(&store, w).await;
    }
    let query = WorkflowQuery {
        contacts: vec![a.clone()],
        first_response_due_before: Some(t(100)),
        limit: 50,
    };
    assert_eq!(
        list(&store, query).await,
        [a2.ticket_id.clone(), a1.ticket_id.clone()]
    );
}

/// A list returns at most `limit` workflows, the first ones in its order; a huge limit is
/// clamped, not an error.
pub async fn list_limit_is_clamped(store: Arc<dyn WorkflowStore>) {
    let contact = ContactId::generate();
    let ws: Vec<_> = (0..5).map(|i| awaiting(&contact, i, 100 - i)).collect();
    for w in &ws {
        create(&store, w).await;
    }
    let with_limit = |mut query: WorkflowQuery, limit| {
        query.limit = limit;
        query
    };
    assert_eq!(
        list(&store, with_limit(by_contacts(&[]), 2)).await,
        [ws[4].ticket_id.clone(), ws[3].ticket_id.clone()]
    );
    assert_eq!(
        list(&store, with_limit(by_contacts(&[&contact]), 2)).await,
        [ws[4].ticket_id.clone(), ws[3].ticket_id.clone()]
    );
    assert_eq!(
        list(&store, with_limit(due_before(1_000), 3)).await,
        [
            ws[4].ticket_id.clone(),
            ws[3].ticket_id.clone(),
            ws[2].ticket_id.clone()
        ]
    );
    assert_eq!(
        list(&store, with_limit(by_contacts(&[]), usize::MAX))
            .await
            .len(),
        5
    );
    assert_eq!(
        list(&store, with_limit(due_before(1_000), usize::MAX))
            .await
            .len(),
        5
    );
}

/// A merge shows on both contacts; merging again is answered as done; unmerging undoes it on
/// both, once.
pub async fn merges_link_both_ways_and_unmerge_undoes_them(store: Arc<dyn WorkflowStore>) {
    let (source, target) = (ContactId::generate(), ContactId::generate());
    assert_eq!(merge(&store, &source, &target).await, MergeOutcome::Merged);
    assert_eq!(
        links(&store, &source).await.merged_into,
        Some(target.clone())
    );
    assert_eq!(links(&store, &target).await.merged, vec![source.clone()]);
    assert_eq!(links(&store, &target).await.merged_into, None);
    assert_eq!(
        merge(&store, &source, &target).await,
        MergeOutcome::AlreadyMerged
    );
    assert_eq!(links(&store, &target).await.merged, vec![source.clone()]);

    assert!(store.unmerge_contact(&source).await.unwrap());
    assert_eq!(links(&store, &source).await, ContactLinks::default());
    assert_eq!(links(&store, &target).await, ContactLinks::default());
    assert!(!store.unmerge_contact(&source).await.unwrap(), "only once");

    assert_eq!(
        merge(&store, &target, &source).await,
        MergeOutcome::Merged,
        "free to merge the other way after an unmerge"
    );
    assert_eq!(links(&store, &source).await.merged, vec![target.clone()]);
}

/// A source merged elsewhere must be unmerged first; a merge into a merged contact, into
/// itself, or of a contact others are merged into is refused; none of them changes anything.
pub async fn merges_refuse_what_merge_outcome_names(store: Arc<dyn WorkflowStore>) {
    let (a, b, c) = (
        ContactId::generate(),
        ContactId::generate(),
        ContactId::generate(),
    );
    assert_eq!(merge(&store, &a, &b).await, MergeOutcome::Merged);
    assert_eq!(
        merge(&store, &a, &c).await,
        MergeOutcome::MergedElsewhere,
        "a is merged into b"
    );
    assert_eq!(
        merge(&store, &c, &a).await,
        MergeOutcome::Refused,
        "the target a is merged into b"
    );
    assert_eq!(
        merge(&store, &b, &c).await,
        MergeOutcome::Refused,
        "a is merged into the source b"
    );
    assert_eq!(merge(&store, &c, &c).await, MergeOutcome::Refused, "itself");
    assert_eq!(links(&store, &a).await.merged_into, Some(b.clone()));
    assert_eq!(links(&store, &b).await.merged, vec![a.clone()]);
    assert_eq!(links(&store, &b).await.merged_into, None);
    assert_eq!(links(&store, &c).await, ContactLinks::default());

    assert!(store.unmerge_contact(&a).await.unwrap());
    assert_eq!(merge(&store, &a, &c).await, MergeOutcome::Merged);
    assert_eq!(merge(&store, &b, &c).await, MergeOutcome::Merged);
    assert_eq!(
        sorted(links(&store, &c).await.merged),
        sorted(vec![a.clone(), b.clone()])
    );
}

/// Several contacts merged into one are all listed on it; unmerging one keeps the others.
pub async fn several_contacts_merge_into_one(store: Arc<dyn WorkflowStore>) {
    let target = ContactId::generate();
    let sources: Vec<_> = (0..4).map(|_| ContactId::generate()).collect();
    for source in &sources {
        assert_eq!(merge(&store, source, &target).await, MergeOutcome::Merged);
    }
    assert_eq!(
        sorted(links(&store, &target).await.merged),
        sorted(sources.clone())
    );
    assert!(store.unmerge_contact(&sources[1]).await.unwrap());
    let mut rest = sources.clone();
    rest.remove(1);
    assert_eq!(sorted(links(&store, &target).await.merged), sorted(rest));
}

/// Eight agents merging one contact into eight different contacts at once: it is merged into
/// exactly one, and only that one lists it.
pub async fn concurrent_merges_of_one_source_merge_it_once(store: Arc<dyn WorkflowStore>) {
    let source = ContactId::generate();
    let targets: Vec<_> = (0..8).map(|_| ContactId::generate()).collect();
    let tasks: Vec<_> = targets
        .iter()
        .map(|target| {
            let (store, source, target) = (Arc::clone(&store), source.clone(), target.clone());
            tokio::spawn(async move { store.merge_contacts(&source, &target, t(0)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task").expect("merge_contacts"));
    }
    let merged: Vec<usize> = (0..8)
        .filter(|i| outcomes[*i] == MergeOutcome::Merged)
        .collect();
    assert_eq!(merged.len(), 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, MergeOutcome::Merged | MergeOutcome::MergedElsewhere)));
    let winner = &targets[merged[0]];
    assert_eq!(
        links(&store, &source).await.merged_into,
        Some(winner.clone())
    );
    for target in &targets {
        let expected = if target == winner {
            vec![source.clone()]
        } else {
            Vec::new()
        };
        assert_eq!(links(&store, target).await.merged, expected);
    }
}

/// A suggestion shows on both contacts with the identity and time first given; suggesting it
/// again (either way) keeps it as it is; a contact's suggestions read oldest first.
pub async fn suggestions_are_recorded_both_ways_once(store: Arc<dyn WorkflowStore>) {
    let (a, b, c) = (
        ContactId::generate(),
        ContactId::generate(),
        ContactId::generate(),
    );
    let identity = Identity("email:alex@example.com".into());
    let suggestion = |other: &ContactId, secs| LinkSuggestion {
        contact_id: other.clone(),
        identity: identity.clone(),
        at: t(secs),
    };
    store.suggest_link(&a, &suggestion(&b, 10)).await.unwrap();
    assert_eq!(links(&store, &a).await.suggestions, [suggestion(&b, 10)]);
    assert_eq!(links(&store, &b).await.suggestions, [suggestion(&a, 10)]);

    store.suggest_link(&a, &suggestion(&b, 20)).await.unwrap();
    let mut other_identity = suggestion(&a, 30);
    other_identity.identity = Identity("email:alex@example.org".into());
    store.suggest_link(&b, &other_identity).await.unwrap();
    assert_eq!(links(&store, &a).await.suggestions, [suggestion(&b, 10)]);
    assert_eq!(links(&store, &b).await.suggestions, [suggestion(&a, 10)]);

    store.suggest_link(&c, &suggestion(&a, 5)).await.unwrap();
    assert_eq!(
        links(&store, &a).await.suggestions,
        [suggestion(&c, 5), suggestion(&b, 10)]
    );
    assert_eq!(links(&store, &c).await.suggestions, [suggestion(&a, 5)]);
    let a_links = links(&store, &a).await;
    assert_eq!(
        (a_links.merged_into, a_links.merged),
        (None, Vec::new()),
        "a suggestion links nothing"
    );
}

/// Preferences read back as saved; saving again replaces them; every agent's are listed.
pub async fn agent_preferences_round_trip_and_list(store: Arc<dyn WorkflowStore>) {
    let mut alice = AgentPreferences {
        agent_id: "alice".into(),
        email: Some("alice@example.com".into()),
        events: BTreeSet::from(["ticket.created".to_string(), "sla.breached".to_string()]),
        teams: BTreeSet::from(["billing".to_string()]),
    };
    let bob = AgentPreferences {
        agent_id: "bob".into(),
        ..AgentPreferences::default()
    };
    store.save_agent_preferences(&alice).await.unwrap();
    store.save_agent_preferences(&bob).await.unwrap();
    assert_eq!(
        store.agent_preferences("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.agent_preferences("bob").await.unwrap(),
        Some(bob.clone())
    );

    alice.email = None;
    alice.events = BTreeSet::from(["chat.waiting".to_string()]);
    store.save_agent_preferences(&alice).await.unwrap();
    assert_eq!(
        store.agent_preferences("alice").await.unwrap(),
        Some(alice.clone())
    );
    let mut all = store.list_agent_preferences().await.unwrap();
    all.sort_by(|x, y| x.agent_id.cmp(&y.agent_id));
    assert_eq!(all, [alice, bob]);
}

/// Eight senders claiming one notification window at once: exactly one gets it; later claims
/// of it fail; another window is free.
pub async fn claim_window_is_won_exactly_once(store: Arc<dyn WorkflowStore>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_window("K3F9Q2XA:29412720", t(i)).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        if task.await.expect("task").expect("claim_window") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one claim wins");
    assert!(!store
        .claim_window("K3F9Q2XA:29412720", t(60))
        .await
        .unwrap());
    assert!(store
        .claim_window("K3F9Q2XA:29412721", t(60))
        .await
        .unwrap());
}

/// Cursors read back the value last saved, by name.
pub async fn cursors_are_stored_by_name(store: Arc<dyn WorkflowStore>) {
    store
        .save_cursor("twitter.mentions", "1790000000000000001")
        .await
        .unwrap();
    store.save_cursor("facebook.mentions", "abc").await.unwrap();
    store
        .save_cursor("twitter.mentions", "1790000000000000099")
        .await
        .unwrap();
    assert_eq!(
        store.cursor("twitter.mentions").await.unwrap().as_deref(),
        Some("1790000000000000099")
    );
    assert_eq!(
        store.cursor("facebook.mentions").await.unwrap().as_deref(),
        Some("abc")
    );
    assert_eq!(store.cursor("instagram.mentions").await.unwrap(), None);
}
