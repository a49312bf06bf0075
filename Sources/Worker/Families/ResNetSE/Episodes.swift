import Foundation
import Shared

/// One training episode: N emotions × M utterances, class-major (row j·M + i is utterance i of
/// class `classes[j]`); each utterance is one stored segment (patch) of a distinct file.
public struct Episode: Equatable, Sendable {
    public var classes: [Int]
    public var files: [Int]
    public var segments: [Int]
    /// The class index of every row.
    public var labels: [Int] { classes.flatMap { c in Array(repeating: c, count: files.count / max(1, classes.count)) } }
}

/// Draws the episodes of one rank.
///
/// Seeding: the episode of global step s on rank r comes from the generator stream
/// ("resnet-se/episode/step<s>/rank<r>") of the run's --seed, and from nothing else: no state is
/// carried between steps, so a run is reproducible for a given seed and number of ranks, a
/// resumed run draws the same episodes as an uninterrupted one, and ranks never draw the same
/// episode. Each rank draws from the training files of its own shards (as fusion's lanes); a
/// different number of ranks therefore gives other episodes, but the same distribution.
public struct EpisodeSampler: Sendable {
    /// Per class: the files available and, per file, its candidate segments.
    public let filesByClass: [[Int]]
    public let segmentsOfFile: [Int: [Int]]
    public let classesPerEpisode: Int
    public let utterancesPerClass: Int

    /// - files: (file id, class, candidate segments); files without segments are left out.
    public init(files: [(id: Int, label: Int, segments: [Int])], classCount: Int, classesPerEpisode: Int, utterancesPerClass: Int) {
        var byClass = [[Int]](repeating: [], count: classCount)
        var segs: [Int: [Int]] = [:]
        for f in files where !f.segments.isEmpty {
            byClass[f.label].append(f.id)
            segs[f.id] = f.segments
        }
        filesByClass = byClass
        segmentsOfFile = segs
        self.classesPerEpisode = classesPerEpisode
        self.utterancesPerClass = utterancesPerClass
    }

    /// Classes with at least M files (the ones an episode can use).
    public var usableClasses: [Int] { filesByClass.indices.filter { filesByClass[$0].count >= utterancesPerClass } }

    /// Why episodes cannot be drawn, in words a user can act on (nil: they can).
    public func problem(names: [String]) -> String? {
        let usable = usableClasses
        guard usable.count >= classesPerEpisode else {
            let counts = filesByClass.enumerated().map { "\(names.indices.contains($0.offset) ? names[$0.offset] : String($0.offset)) \($0.element.count)" }
            return "episodes of \(classesPerEpisode) emotions × \(utterancesPerClass) utterances need \(classesPerEpisode) classes with at least \(utterancesPerClass) training files each; this rank's share has \(counts.joined(separator: ", ")). Use fewer --episode-utterances or --episode-classes, or fewer ranks."
        }
        return nil
    }

    public func episode(seed: UInt64, step: Int, rank: Int) -> Episode {
        var rng = SeededGenerator(seed: seed, stream: "resnet-se/episode/step\(step)/rank\(rank)")
        var pool = usableClasses
        precondition(pool.count >= classesPerEpisode, "not enough classes for an episode")
        pool.seededShuffle(using: &rng)
        let chosen = Array(pool.prefix(classesPerEpisode))
        var files: [Int] = [], segments: [Int] = []
        for c in chosen {
            // M distinct files: a partial Fisher–Yates shuffle.
            var candidates = filesByClass[c]
            for i in 0..<utterancesPerClass {
                let j = i + rng.below(candidates.count - i)
                candidates.swapAt(i, j)
                let f = candidates[i]
                let segs = segmentsOfFile[f]!
                files.append(f)
                segments.append(segs[rng.below(segs.count)])
            }
        }
        return Episode(classes: chosen, files: files, segments: segments)
    }
}
