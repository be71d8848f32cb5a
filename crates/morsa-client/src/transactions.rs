//! The account's transactions: one at a time (each with the account's next nonce), and the
//! commands that wait meanwhile go together in the next one.
//!
//! Every store needs a few coordinator commands (reserve, register, certify), and a client
//! sends one transaction at a time: the next nonce is known only once the coordinator has
//! committed the last one. Sent one command per transaction, concurrent stores would queue
//! for the account's commits. Instead, whoever submits while a transaction is in flight
//! queues its command, and when the flight lands every queued command (up to
//! [`MAX_BATCH_COMMANDS`] and [`MAX_BATCH_BYTES`]) goes as one [`Command::Batch`]: one
//! signature, one nonce, one commit, and each command still checked and answered on its own
//! by the coordinator. A command that waits alone goes in the single-command form, as before.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use morsa_api::client::{ClientError, CoordClient};
use morsa_api::coord::{Command, CommandResult, MAX_BATCH_COMMANDS, SubmitResponse, Transaction};
use morsa_core::AccountKey;
use reqwest::StatusCode;
use tokio::sync::oneshot;

/// Most JSON bytes of commands one transaction carries (the coordinator takes bodies of up to
/// [`morsa_api::coord::MAX_BODY_BYTES`]; a certificate is a few KiB).
pub const MAX_BATCH_BYTES: usize = 96 << 10;

/// How often a transaction is re-signed with a fresh nonce after its nonce went stale.
pub const STALE_NONCE_RETRIES: u32 = 16;

/// How many transactions the client's account sent and how many commands they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionStats {
    /// Transactions the coordinator accepted.
    pub transactions: u64,
    /// Commands those transactions carried (more than `transactions` when commands of
    /// concurrent operations shared a transaction).
    pub commands: u64,
}

/// The account's transaction sender (see the module's documentation).
#[derive(Default)]
pub(crate) struct Transactions {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    queue: std::sync::Mutex<Queue>,
    transactions: AtomicU64,
    commands: AtomicU64,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Whether a sender task is running (it sends until `waiting` is empty).
    sending: bool,
    /// The account's next nonce, once known.
    nonce: Option<u64>,
}

struct Waiting {
    command: Command,
    /// Bytes of the command's JSON.
    bytes: usize,
    answer: oneshot::Sender<Result<SubmitResponse, ClientError>>,
}

/// What a sender task needs to sign and send.
struct Account {
    coord: CoordClient,
    key: AccountKey,
    chain_id: String,
}

impl Transactions {
    /// Submits `command` for the account of `key`, in the next transaction; answers what the
    /// command did or why it was refused (the coordinator's error for it, or the transaction's).
    pub(crate) async fn submit(
        &self,
        coord: &CoordClient,
        key: &AccountKey,
        chain_id: &str,
        command: Command,
    ) -> Result<SubmitResponse, ClientError> {
        let bytes = serde_json::to_vec(&command).map_or(MAX_BATCH_BYTES, |json| json.len());
        let (answer, answered) = oneshot::channel();
        let start_sender = {
            let mut queue = lock(&self.shared.queue);
            queue.waiting.push_back(Waiting { command, bytes, answer });
            !std::mem::replace(&mut queue.sending, true)
        };
        if start_sender {
            let account = Account { coord: coord.clone(), key: key.clone(), chain_id: chain_id.to_owned() };
            tokio::spawn(send_all(Arc::clone(&self.shared), account));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(ClientError::Transport("the transaction sender stopped".into())))
    }

    /// How many transactions were accepted so far and how many commands they carried.
    pub(crate) fn stats(&self) -> TransactionStats {
        TransactionStats {
            transactions: self.shared.transactions.load(Ordering::Relaxed),
            commands: self.shared.commands.load(Ordering::Relaxed),
        }
    }
}

/// Sends the waiting commands, as many per transaction as fit, until none waits.
async fn send_all(shared: Arc<Shared>, account: Account) {
    let mut cancelled = Cancelled(Some(Arc::clone(&shared)));
    loop {
        let (batch, nonce) = {
            let mut queue = lock(&shared.queue);
            if queue.waiting.is_empty() {
                // Under the lock: a command queued from now on starts a new sender.
                queue.sending = false;
                cancelled.0 = None;
                return;
            }
            (take_batch(&mut queue.waiting), queue.nonce.take())
        };
        let commands: Vec<Command> = batch.iter().map(|waiting| waiting.command.clone()).collect();
        let count = commands.len();
        let (outcome, next_nonce) = send(&account, nonce, commands).await;
        lock(&shared.queue).nonce = next_nonce;
        if outcome.is_ok() {
            shared.transactions.fetch_add(1, Ordering::Relaxed);
            shared.commands.fetch_add(morsa_core::convert::saturating_u64(count), Ordering::Relaxed);
        }
        let answers = match outcome {
            Ok(response) if count == 1 => vec![Ok(response)],
            Ok(response) => split(response, count),
            Err(error) => vec![Err(error); count],
        };
        for (waiting, answer) in batch.into_iter().zip(answers) {
            // The submitter may have stopped waiting; its command was sent all the same.
            let _ = waiting.answer.send(answer);
        }
    }
}

fn lock(queue: &std::sync::Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    // Every update of the queue leaves it consistent: a panic elsewhere does not matter.
    queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Marks the sender stopped if its task is cancelled (its runtime shut down) before the queue
/// emptied: the commands still waiting are answered with an error (their submitters' runtime
/// is most likely gone too), and the next submission starts a new sender.
struct Cancelled(Option<Arc<Shared>>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            let mut queue = lock(&shared.queue);
            queue.sending = false;
            queue.waiting.clear();
        }
    }
}

/// The first waiting commands that fit in one transaction (at least one).
fn take_batch(waiting: &mut VecDeque<Waiting>) -> Vec<Waiting> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(next) = waiting.front() {
        let full = batch.len() == MAX_BATCH_COMMANDS || bytes + next.bytes > MAX_BATCH_BYTES;
        if !batch.is_empty() && full {
            break;
        }
        bytes += next.bytes;
        batch.extend(waiting.pop_front());
    }
    batch
}

/// Signs and sends `commands` as one transaction with the nonce `nonce` (read from the
/// coordinator if unknown); answers the outcome and the next nonce, if known.
///
/// A nonce that went stale (another client used the account: a gateway and the CLI on one
/// key, say) is read again and the transaction re-signed and sent again, up to
/// [`STALE_NONCE_RETRIES`] times: each stale nonce means the other client's transaction was
/// committed, so the account makes progress. That is safe only because no earlier attempt
/// can have been applied: the coordinator client moves a write to another replica only when
/// it surely was not received (connection refused, 503), and a write whose outcome is unknown
/// (timeout, `504 commit_unknown`) is returned as an error here, not retried.
async fn send(
    account: &Account,
    mut nonce: Option<u64>,
    mut commands: Vec<Command>,
) -> (Result<SubmitResponse, ClientError>, Option<u64>) {
    let command = match commands.len() {
        1 => commands.swap_remove(0),
        _ => Command::Batch { commands },
    };
    let sender = account.key.id();
    let mut retries = 0;
    loop {
        let next = match nonce {
            Some(next) => next,
            None => match account.coord.account(&sender).await {
                Ok(info) => info.nonce,
                Err(error) => return (Err(error), None),
            },
        };
        let transaction = Transaction { sender, nonce: next, command: command.clone() };
        let signed = transaction.sign(&account.key, &account.chain_id);
        match account.coord.submit_transaction(&signed).await {
            Ok(response) => return (Ok(response), next.checked_add(1)),
            Err(error) => {
                nonce = None;
                if retries == STALE_NONCE_RETRIES || error.code() != Some("bad_nonce") {
                    return (Err(error), None);
                }
                retries += 1;
            }
        }
    }
}

/// Each command's answer from a batch's response: what it did, or the error the coordinator
/// refused it with.
fn split(response: SubmitResponse, count: usize) -> Vec<Result<SubmitResponse, ClientError>> {
    if response.results.len() != count {
        let error = ClientError::Decode(format!(
            "the coordinator answered {} results for a batch of {count} commands",
            response.results.len()
        ));
        return vec![Err(error); count];
    }
    response
        .results
        .into_iter()
        .map(|result| match result {
            CommandResult::Applied { events, created } => {
                Ok(SubmitResponse { events, created, results: Vec::new() })
            }
            CommandResult::Refused { status, error } => Err(ClientError::Http {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                body: error,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use morsa_core::ObjectId;

    fn waiting(bytes: usize) -> Waiting {
        let command = Command::Transfer { to: AccountKey::from_seed([1; 32]).id(), amount: 1 };
        Waiting { command, bytes, answer: oneshot::channel().0 }
    }

    #[test]
    fn a_batch_takes_what_fits_and_at_least_one_command() {
        let mut queue: VecDeque<Waiting> = (0..MAX_BATCH_COMMANDS + 3).map(|_| waiting(10)).collect();
        assert_eq!(take_batch(&mut queue).len(), MAX_BATCH_COMMANDS);
        assert_eq!(take_batch(&mut queue).len(), 3);
        assert!(queue.is_empty());

        let mut queue: VecDeque<Waiting> =
            [MAX_BATCH_BYTES / 2, MAX_BATCH_BYTES / 2, 1, MAX_BATCH_BYTES + 1, 1].map(waiting).into();
        let sizes = |batch: Vec<Waiting>| batch.iter().map(|waiting| waiting.bytes).collect::<Vec<_>>();
        assert_eq!(sizes(take_batch(&mut queue)), [MAX_BATCH_BYTES / 2, MAX_BATCH_BYTES / 2]);
        assert_eq!(sizes(take_batch(&mut queue)), [1]);
        // Larger than a batch: it goes alone.
        assert_eq!(sizes(take_batch(&mut queue)), [MAX_BATCH_BYTES + 1]);
        assert_eq!(sizes(take_batch(&mut queue)), [1]);
    }

    #[test]
    fn each_command_gets_its_own_result_or_refusal() {
        let object = ObjectId([7; 32]);
        let refusal = morsa_api::ErrorBody::new("insufficient_balance", "the balance is too low");
        let response = SubmitResponse {
            events: Vec::new(),
            created: vec![object],
            results: vec![
                CommandResult::Applied { events: Vec::new(), created: vec![object] },
                CommandResult::Refused { status: 402, error: refusal.clone() },
            ],
        };
        let answers = split(response.clone(), 2);
        assert_eq!(answers[0].as_ref().unwrap().created, [object]);
        let error = answers[1].as_ref().unwrap_err();
        assert_eq!(error.code(), Some("insufficient_balance"));
        assert!(matches!(error, ClientError::Http { status, .. } if status.as_u16() == 402));
        // A response that does not answer every command fails them all.
        assert!(split(response, 3).iter().all(Result::is_err));
    }
}
