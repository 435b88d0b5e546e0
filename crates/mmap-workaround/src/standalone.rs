// Writes a small text (2000 words between runs of mixed whitespace) to a
// file of its own in the temporary directory, counts its words the four
// ways with 2 workers, deletes the file, and asserts that every way agrees
// with one count over the whole text. How much memory each way holds is the
// lab's to measure, with the checkpoints that do nothing here.
fn main() {
    // Started again as a counting child (strategies 3 and 4): count and exit.
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--child-role") {
        let role = args.next().unwrap_or_default();
        let role_args: Vec<String> = args.collect();
        if let Err(err) = child_main(&role, &role_args, |_| Ok(())) {
            eprintln!("error: child role {role}: {err}");
            std::process::exit(1);
        }
        return;
    }

    let workers = 2;
    let separators = [" ", "\n", "\t", "  \r\n", " \x0b\x0c "];
    let text: String = (0..2000).map(|i| format!("word{i}{}", separators[i % separators.len()])).collect();
    let text = text.as_bytes();
    // The pid makes the name unique: two copies running at once do not share a file.
    let path = std::env::temp_dir().join(format!("mmap-workaround-{}.txt", std::process::id()));
    std::fs::write(&path, text).expect("writing the text to the temporary directory");

    let one = one_thread(text, &|| {});
    let threads = threads_sharing_one_buffer(text, workers, &|| {});
    let copies = processes_with_copied_chunks(text, workers, |_, _| Ok(()));
    let mapped = processes_sharing_one_mmap(&path, workers, |_, _| Ok(()));
    // Deleted before anything is asserted, so that a failure leaves no file behind.
    let _ = std::fs::remove_file(&path);
    let copies = copies.expect("counting with processes sent a copy of their chunk");
    let mapped = mapped.expect("counting with processes sharing one mmap");

    println!("one thread:                        {one} words");
    println!("{workers} threads sharing one buffer:      {threads} words");
    println!("{workers} processes sent copied chunks:    {copies} words");
    println!("{workers} processes sharing one mmap:      {mapped} words");
    let whole = count_words(text);
    assert_eq!(whole, 2000);
    for (way, words) in [("one thread", one), ("threads", threads), ("copies", copies), ("mmap", mapped)] {
        assert_eq!(words, whole, "{way} counted {words} words, not {whole}");
    }
}
