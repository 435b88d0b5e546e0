// Runs each way once and asserts what always holds: with the lower fork
// first, or trying and backing off, every seat eats every meal; with the
// left fork first and the meeting point, parking_lot's detector finds one
// cycle of every seat. Those seats stay asleep for good, as in a real
// program; they end with this process.
fn main() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    let meeting = Duration::from_millis(500);
    let try_wait = Duration::from_millis(5);
    let ways: [(&str, Way); 2] =
        [("lower first", Table::eat_lower_first), ("try, back off", Table::eat_trying)];
    for seats in [2, 5] {
        for (name, way) in ways {
            let table = Arc::new(Table::new(seats, meeting, try_wait));
            for seat in seat_threads(&table, way, 100).expect("the seats start") {
                seat.join().expect("a seat does not panic");
            }
            let meals: Vec<u64> = table.meals.iter().map(|m| m.load(Ordering::Relaxed)).collect();
            println!("{seats} seats, {name}: meals {meals:?}");
            assert!(meals.iter().all(|&m| m == 100));
        }
    }

    for seats in [2, 5] {
        let table = Arc::new(Table::new(seats, meeting, try_wait));
        let sitting = seat_threads(&table, Table::eat_left_first, 100).expect("the seats start");
        // Ask the detector until it answers, for at most ten seconds.
        let deadline = Instant::now() + Duration::from_secs(10);
        let cycles = loop {
            let cycles = deadlock_cycles(&sitting);
            if !cycles.is_empty() || Instant::now() > deadline {
                break cycles;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        println!("{seats} seats, left first: the detector found {cycles:?}");
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].len(), seats);
    }
}
