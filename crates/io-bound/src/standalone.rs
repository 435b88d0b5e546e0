// Downloads 4 URLs from a server on 127.0.0.1 that waits 50 ms before each
// answer, three ways, and asserts what always holds: every way receives
// every body, in the order of the URLs; one after the other, the waits add
// up; and the server never sees more requests waiting at once than the way
// lets out (one, or the pool's two workers). How much the threads save is
// printed, not asserted: it depends on the machine's load.
fn main() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let latency = Duration::from_millis(50);
    let workers = 2;

    // A stand-in for a distant web site: it answers each request on a thread
    // of its own after `latency`, with the request's path as the body, so
    // requests that arrive together wait together. It counts the requests
    // waiting at once (now, most): a request stops counting before its
    // answer is sent, so a client that asks again only after its answer is
    // never counted twice.
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a free port on 127.0.0.1"));
    let addr = server.server_addr().to_ip().expect("an IP address");
    let waiting = Arc::new(Mutex::new((0usize, 0usize)));
    let dispatcher = {
        let (server, waiting) = (Arc::clone(&server), Arc::clone(&waiting));
        std::thread::spawn(move || {
            std::thread::scope(|scope| {
                // `recv` fails once `unblock` is called below: the loop ends.
                while let Ok(request) = server.recv() {
                    let waiting = &waiting;
                    scope.spawn(move || {
                        {
                            let mut waiting = waiting.lock().unwrap();
                            waiting.0 += 1;
                            waiting.1 = waiting.1.max(waiting.0);
                        }
                        std::thread::sleep(latency);
                        waiting.lock().unwrap().0 -= 1;
                        let path = request.url().to_string();
                        let _ = request.respond(tiny_http::Response::from_string(path));
                    });
                }
            });
        })
    };

    let paths: Vec<String> = (0..4).map(|i| format!("/item/{i}")).collect();
    let urls: Vec<String> = paths.iter().map(|path| format!("http://{addr}{path}")).collect();
    let agent = agent_with_timeout(latency + Duration::from_secs(5));
    let fetch = |url: &str| {
        let mut body = Vec::new();
        download(&agent, url, &mut body).map(|_| body)
    };
    // Runs one way, checks every body, and returns its time and the most
    // requests the server saw waiting at once.
    let timed = |way: &str, download_all: &dyn Fn() -> Vec<std::io::Result<Vec<u8>>>| {
        waiting.lock().unwrap().1 = 0;
        let started = Instant::now();
        let bodies = download_all();
        let took = started.elapsed();
        let most = waiting.lock().unwrap().1;
        println!("{way}: {took:.0?}, at most {most} requests waiting at the server at once");
        for (path, body) in paths.iter().zip(bodies) {
            assert_eq!(body.expect("the loopback server answers"), path.as_bytes());
        }
        (took, most)
    };
    let (sequential, one_at_a_time) = timed("one after another", &|| one_after_another(&urls, fetch));
    let (threaded, _) = timed("thread per URL", &|| thread_per_url(&urls, fetch));
    let (_, pool_at_once) = timed("a pool of 2 workers", &|| fixed_pool(&urls, workers, fetch));
    println!("a thread per URL was {:.1}x faster", sequential.as_secs_f64() / threaded.as_secs_f64());
    drop(agent);
    server.unblock();
    dispatcher.join().unwrap();

    // One after the other, each download waits out the latency in turn.
    assert!(sequential >= latency * urls.len() as u32);
    assert_eq!(one_at_a_time, 1);
    // The pool never has more requests out than it has workers.
    assert!(pool_at_once <= workers);
}
