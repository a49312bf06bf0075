import Foundation

/// Train/test splits of a store's files: the paper's random 85:15 split, stratified by label, and
/// a speaker-independent split with held-out speakers. Both are made from the seed alone, so they
/// are the same on every rank and every rerun.
public enum SplitMaker {
    /// Per label: the files shuffled with the seed, round(fraction × n) of them to test (at least one
    /// when the label has two or more files, and never all of them).
    public static func random(labels: [Int], fraction: Double, seed: UInt64) -> Split {
        var rng = SeededGenerator(seed: seed, stream: "split/random")
        var test: [Int] = []
        for label in Set(labels).sorted() {
            var ids = labels.indices.filter { labels[$0] == label }
            ids.seededShuffle(using: &rng)
            var k = Int((fraction * Double(ids.count)).rounded())
            if ids.count >= 2 { k = min(max(k, fraction > 0 ? 1 : 0), ids.count - 1) } else { k = 0 }
            test += ids.prefix(k)
        }
        let testSet = Set(test)
        return Split(train: labels.indices.filter { !testSet.contains($0) }, test: test.sorted(),
                     method: "stratified by label, seed \(seed), test fraction \(fraction)", testSpeakers: nil)
    }

    /// Held-out speakers: given ones, or chosen from seeded shuffles of the speakers so that the test
    /// side holds close to `fraction` of the files and both sides have every class (when possible).
    public static func speaker(labels: [Int], speakers: [String], fraction: Double, seed: UInt64, given: [String]?) throws -> Split {
        let all = Array(Set(speakers)).sorted()
        var chosen: Set<String>
        if let given, !given.isEmpty {
            chosen = []
            for g in given {
                let matches = all.filter { $0 == g || $0.split(separator: ":", maxSplits: 1).last.map(String.init) == g }
                guard matches.count == 1 else {
                    throw FileError("--test-speakers: '\(g)' \(matches.isEmpty ? "is not a speaker of the store" : "matches several speakers (\(matches.joined(separator: ", "))); give the prefixed id") ; speakers: \(all.joined(separator: ", "))")
                }
                chosen.insert(matches[0])
            }
            if chosen.count == all.count { throw FileError("--test-speakers: every speaker would be held out; leave some for training") }
        } else {
            chosen = choose(labels: labels, speakers: speakers, all: all, fraction: fraction, seed: seed)
        }
        let test = speakers.indices.filter { chosen.contains(speakers[$0]) }
        let testSet = Set(test)
        let how = given?.isEmpty == false ? "held-out speakers given by --test-speakers" : "held-out speakers chosen with seed \(seed) for test fraction \(fraction)"
        return Split(train: speakers.indices.filter { !testSet.contains($0) }, test: test, method: how, testSpeakers: chosen.sorted())
    }

    static func choose(labels: [Int], speakers: [String], all: [String], fraction: Double, seed: UInt64) -> Set<String> {
        guard all.count >= 2 else { return [] }
        var rng = SeededGenerator(seed: seed, stream: "split/speaker")
        let classes = Set(labels)
        var perSpeaker: [String: [Int]] = [:]
        for (i, s) in speakers.enumerated() { perSpeaker[s, default: []].append(labels[i]) }
        let total = Double(labels.count)
        var best: (cost: Double, set: Set<String>)? = nil
        // Each trial adds speakers in a shuffled order until the target is reached; the trial whose
        // test share is closest (with every class on both sides, if any trial manages it) wins.
        for _ in 0..<256 {
            var order = all
            order.seededShuffle(using: &rng)
            var set: Set<String> = []
            var n = 0
            for s in order {
                if Double(n) >= fraction * total { break }
                if set.count == all.count - 1 { break }
                set.insert(s)
                n += perSpeaker[s]!.count
            }
            let testClasses = Set(set.flatMap { perSpeaker[$0]! })
            let trainClasses = Set(all.filter { !set.contains($0) }.flatMap { perSpeaker[$0]! })
            let missing = classes.subtracting(testClasses).count + classes.subtracting(trainClasses).count
            let cost = Double(missing) * 10 + abs(Double(n) / total - fraction)
            if best == nil || cost < best!.cost { best = (cost, set) }
        }
        return best?.set ?? []
    }
}
