//! Requests fired all at once, and what their clients saw, summed up for messages.

use reqwest::{RequestBuilder, StatusCode};

use crate::client::send;

/// Runs every future at once (each on its own task) and returns their outputs in order.
pub async fn all_at_once<T, F>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut count = 0;
    for (index, future) in futures.into_iter().enumerate() {
        set.spawn(async move { (index, future.await) });
        count += 1;
    }
    let mut outputs: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (index, output) = joined.expect("a concurrent task panicked");
        outputs[index] = Some(output);
    }
    outputs.into_iter().map(Option::unwrap).collect()
}

/// Sends every request at once and returns each one's status and body, in order.
pub async fn send_all_at_once(
    requests: impl IntoIterator<Item = RequestBuilder>,
) -> Vec<(StatusCode, String)> {
    all_at_once(requests.into_iter().map(|request| async move {
        let response = send(request).await;
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }))
    .await
}

/// Asserts that of requests racing to create one thing, exactly one got 201 and every other
/// 409.
pub fn assert_one_created_and_the_rest_conflict(outcomes: &[(StatusCode, String)]) {
    let statuses: Vec<StatusCode> = outcomes.iter().map(|(status, _)| *status).collect();
    let expected = std::collections::BTreeMap::from([(201, 1), (409, outcomes.len() - 1)]);
    assert_eq!(
        tally(&statuses),
        expected,
        "one 201 and otherwise 409: {}",
        describe(outcomes)
    );
}

/// What clients saw of many requests, for messages: the count of each status and the bodies
/// of the first server errors.
pub fn describe(outcomes: &[(StatusCode, String)]) -> String {
    let statuses: Vec<StatusCode> = outcomes.iter().map(|(s, _)| *s).collect();
    let odd: Vec<&String> = outcomes
        .iter()
        .filter(|(s, _)| s.is_server_error())
        .map(|(_, body)| body)
        .take(3)
        .collect();
    format!(
        "statuses {:?}, first server errors {odd:?}",
        tally(&statuses)
    )
}

/// Counts each status in `statuses`, for messages: `{201: 150, 409: 50}`.
pub fn tally(statuses: &[StatusCode]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        *counts.entry(status.as_u16()).or_insert(0) += 1;
    }
    counts
}
