// Starts a worker each way once, forks a child that writes half of a
// buffer, and forks and spawns a child that takes a lock another thread
// holds. Every worker says hello; the forked child is still stuck on the
// copied lock after a second (then it is killed), the spawned one is not.
fn main() {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::time::Duration;

    // Started again as a spawned child: play the role and exit.
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--child-role") {
        let role = args.next().unwrap_or_default();
        let role_args: Vec<String> = args.collect();
        if let Err(err) = child_main(&role, &role_args) {
            eprintln!("error: child role {role}: {err}");
            std::process::exit(1);
        }
        return;
    }

    // The fork server first, while this process has one thread.
    let mut server = ForkServer::start().expect("forking the fork server");
    start_thread().expect("starting a thread").join().expect("the thread does not panic");
    reap(start_forked().expect("forking a worker")).expect("reaping the worker");
    server.start_worker().expect("a worker from the fork server");
    drop(server);
    let spawned = start_spawned().expect("spawning a worker");
    assert!(spawned.wait_with_output().expect("waiting for the worker").status.success());
    println!("a thread, a forked, a fork server's and a spawned worker each sent their first message");

    let mut buffer = vec![1u8; 16 << 20];
    let child = fork_and_write_half(&mut buffer, || true).expect("forking the writer");
    reap(child).expect("reaping the writer");
    assert!(buffer.iter().all(|&byte| byte == 1), "the child's writes stayed in its copy");
    println!("the forked child wrote to half of its 16 MiB copy; the parent's buffer is unchanged");

    let (mut from_child, to_parent) = pipe().expect("creating a pipe");
    let child = while_another_thread_holds_the_lock(|| fork_and_take_lock(&to_parent))
        .expect("starting the holding thread")
        .expect("forking the child");
    drop(to_parent);
    // Wait one second for the child's byte, then kill it.
    let mut fds = [nix::poll::PollFd::new(from_child.as_fd(), nix::poll::PollFlags::POLLIN)];
    let timeout = nix::poll::PollTimeout::try_from(Duration::from_secs(1)).expect("a valid timeout");
    let ready = nix::poll::poll(&mut fds, timeout).expect("poll");
    let got_lock = ready > 0 && from_child.read(&mut [0u8]).expect("reading the pipe") == 1;
    nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL).ok();
    reap(child).expect("reaping the stuck child");
    assert!(!got_lock, "the forked child took a lock its parent's other thread held");
    println!("the forked child was still stuck on the copied lock after 1 s, and was killed");

    let mut spawned = while_another_thread_holds_the_lock(|| spawn_child("take-lock"))
        .expect("starting the holding thread")
        .expect("spawning the child");
    // It says so once it has the lock (a read that cannot hang: the child
    // exits after writing, and its exit closes the pipe).
    let mut said = Vec::new();
    spawned.stdout.take().expect("stdout is piped").read_to_end(&mut said).expect("reading the child");
    assert!(spawned.wait().expect("waiting for the child").success());
    assert_eq!(said, b"l", "the spawned child did not take its own lock");
    println!("the spawned child took its own fresh lock at once");
}
