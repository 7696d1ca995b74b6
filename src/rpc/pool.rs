//! The RPC arbiters: one per core, each serving its share of the connections.
//!
//! The main thread only accepts. Each connection is handed to the arbiter serving the fewest,
//! which parses, answers, and runs its own InvoiceCreator and KeySigner (made on it, from the
//! context the daemon gives), so an invoice is made on the thread that read it and visits no
//! other thread but the log writer's. Owns the arbiters' threads, the count of open connections
//! (for the limit) and of requests in flight (for a prompt, complete stop).

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Arbiter;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{UnixListener, UnixStream};

use super::error::RpcError;
use super::{response, serve_connection, RpcContext};

/// Most connections served at once; one more is told so and closed.
pub const MAX_CONNECTIONS: usize = 4096;

/// A count of something in progress, shared by the arbiters, that drops back when its guard
/// does, also when the task holding it panics or is cancelled, so a stop never waits for work
/// that no longer exists.
#[derive(Clone, Default)]
pub(crate) struct Counter(Arc<AtomicUsize>);

pub(crate) struct Counted(Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn enter(&self) -> Counted {
        self.0.fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(&self.0))
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// The count itself, for whoever reads it elsewhere (the metrics).
    pub(crate) fn shared(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.0)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One RPC arbiter: its thread, the connections it serves, and where new ones are sent. Dropping
/// it stops the arbiter and waits for its thread (whose actors hold log handles).
struct Worker {
    arbiter: Option<Arbiter>,
    open: Counter,
    connections: tokio::sync::mpsc::UnboundedSender<Handed>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(arbiter) = self.arbiter.take() {
            arbiter.stop();
            if arbiter.join().is_err() {
                tracing::error!("an RPC arbiter panicked");
            }
        }
    }
}

/// A connection handed to an arbiter, counted (in the arbiter's load and the daemon's limit)
/// for as long as it is open.
type Handed = (std::os::unix::net::UnixStream, [Counted; 2]);

impl Worker {
    /// Starts arbiter `index` (its thread named `rpc-INDEX`), makes its context there, and serves
    /// every connection it is given; returns once the context is made.
    async fn start<F>(
        index: usize,
        make_context: Arc<F>,
        in_flight: Counter,
    ) -> std::io::Result<Worker>
    where
        F: Fn() -> RpcContext + Send + Sync + 'static,
    {
        let arbiter = Arbiter::try_with_tokio_rt(move || {
            // The name `top` and the load tool's CPU accounting show (best effort).
            let _ = std::fs::write("/proc/thread-self/comm", format!("rpc-{index}"));
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })?;
        let (connections, mut incoming) = tokio::sync::mpsc::unbounded_channel::<Handed>();
        let (ready, made) = tokio::sync::oneshot::channel();
        // The context is made on the arbiter's thread, so its actors run there.
        let started = arbiter.spawn_fn(move || {
            let ctx = Rc::new(make_context());
            let _ = ready.send(());
            actix::spawn(async move {
                while let Some((stream, open)) = incoming.recv().await {
                    let (ctx, in_flight) = (ctx.clone(), in_flight.clone());
                    actix::spawn(async move {
                        let _open = open;
                        match UnixStream::from_std(stream) {
                            Ok(stream) => serve_connection(ctx, stream, in_flight).await,
                            Err(e) => tracing::warn!("cannot serve a connection: {e}"),
                        }
                    });
                }
            });
        });
        let worker = Worker {
            arbiter: Some(arbiter),
            open: Counter::default(),
            connections,
        };
        if !started || made.await.is_err() {
            return Err(std::io::Error::other(format!(
                "RPC arbiter {index} stopped at start"
            )));
        }
        Ok(worker)
    }
}

/// Gives `stream` to the arbiter serving the fewest connections; one that has stopped (its
/// thread is gone, so it serves none and would be chosen every time) is passed over.
fn hand(workers: &[Worker], mut stream: std::os::unix::net::UnixStream, open: &Counter) {
    let mut by_load: Vec<&Worker> = workers.iter().collect();
    by_load.sort_by_key(|w| w.open.get());
    for worker in by_load {
        let counted = [worker.open.enter(), open.enter()];
        match worker.connections.send((stream, counted)) {
            Ok(()) => return,
            Err(tokio::sync::mpsc::error::SendError((back, _))) => stream = back,
        }
    }
    tracing::error!("dropping a connection: every RPC arbiter has stopped");
}

/// The RPC arbiters, ready to serve.
pub struct RpcPool {
    workers: Vec<Worker>,
    in_flight: Counter,
    /// Connections open on the socket.
    open: Counter,
}

impl RpcPool {
    /// Starts `workers` RPC arbiters (at least one), each with the context `make_context` makes
    /// on it; returns once every one is ready.
    ///
    /// # Errors
    /// When an arbiter cannot be started.
    pub async fn start<F>(workers: usize, make_context: F) -> std::io::Result<RpcPool>
    where
        F: Fn() -> RpcContext + Send + Sync + 'static,
    {
        let make_context = Arc::new(make_context);
        let in_flight = Counter::default();
        let mut pool = Vec::with_capacity(workers.max(1));
        for i in 0..workers.max(1) {
            pool.push(Worker::start(i, Arc::clone(&make_context), in_flight.clone()).await?);
        }
        Ok(RpcPool {
            workers: pool,
            in_flight,
            open: Counter::default(),
        })
    }

    /// The number of connections open on the socket, as it changes.
    pub fn connections(&self) -> Arc<AtomicUsize> {
        self.open.shared()
    }

    /// Serves `listener` until `shutdown` resolves, then waits (up to 10 s) for requests in
    /// flight (not for the waits, which may never end), and stops the arbiters.
    ///
    /// The main thread accepts and hands each connection to the arbiter with the fewest. Each
    /// connection is its own task there and handles one request at a time, so a client that
    /// sends slowly or never reads its answers holds up only itself.
    pub async fn serve(
        self,
        listener: UnixListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let RpcPool {
            workers,
            in_flight,
            open,
        } = self;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((mut stream, _)) if open.get() >= MAX_CONNECTIONS => {
                        tracing::warn!("refusing a connection: {MAX_CONNECTIONS} open");
                        actix::spawn(async move {
                            let e = RpcError::too_many_connections(MAX_CONNECTIONS);
                            let _ = stream.write_all(&response("null", Err(e))).await;
                        });
                    }
                    Ok((stream, _)) => {
                        match stream.into_std() {
                            Ok(stream) => hand(&workers, stream, &open),
                            Err(e) => tracing::warn!("dropping a connection: {e}"),
                        }
                    }
                    Err(e) => tracing::warn!("accept failed: {e}"),
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        for _ in 0..1000 {
            if in_flight.get() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(workers);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A worker without a thread: what it is handed arrives in the receiver, if kept.
    fn worker() -> (Worker, tokio::sync::mpsc::UnboundedReceiver<Handed>) {
        let (connections, incoming) = tokio::sync::mpsc::unbounded_channel();
        (
            Worker {
                arbiter: None,
                open: Counter::default(),
                connections,
            },
            incoming,
        )
    }

    #[test]
    fn a_connection_goes_to_the_least_loaded_arbiter_that_still_runs() {
        let open = Counter::default();
        let (busy, mut busy_in) = worker();
        let (stopped, stopped_in) = worker();
        let (idle, mut idle_in) = worker();
        let _load = [busy.open.enter(), busy.open.enter(), idle.open.enter()];
        // The stopped one serves nothing, so it would be chosen first.
        drop(stopped_in);
        let workers = [busy, stopped, idle];
        hand(
            &workers,
            std::os::unix::net::UnixStream::pair().unwrap().0,
            &open,
        );
        let (_, counted) = idle_in.try_recv().unwrap();
        assert!(busy_in.try_recv().is_err());
        assert_eq!(
            (workers[2].open.get(), workers[1].open.get(), open.get()),
            (2, 0, 1)
        );
        // Its counts last as long as the connection is held.
        drop(counted);
        assert_eq!((workers[2].open.get(), open.get()), (1, 0));
        // With every arbiter stopped, the connection is dropped and counts nothing.
        let (gone, gone_in) = worker();
        drop(gone_in);
        hand(
            &[gone],
            std::os::unix::net::UnixStream::pair().unwrap().0,
            &open,
        );
        assert_eq!(open.get(), 0);
    }
}
