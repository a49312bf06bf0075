import Foundation
import Shared
import Worker
import XCTest

/// Deletion/insertion curves, their areas and the verdict against random orders; the pointing game.
final class FaithfulnessTests: XCTestCase {
    func testAreaUnderCurve() {
        XCTAssertEqual(Faithfulness.auc([1, 0.5, 0]), 0.5)
        XCTAssertEqual(Faithfulness.auc([1, 1]), 1)
        XCTAssertEqual(Faithfulness.auc([0, 1, 1, 1, 1]), 0.875)
    }

    func testCellsAndOrder() {
        var s = Faithfulness.Settings()
        s.cellFrames = 2; s.cellBands = 2
        let (labels, count) = Faithfulness.cells(frames: 4, bands: 4, settings: s)
        XCTAssertEqual(count, 4)
        XCTAssertEqual(labels, [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3])
        let map: [Float] = [0, 0, 5, 5, 0, 0, 5, 5, 1, 1, 0, 0, 1, 1, 0, 0]
        XCTAssertEqual(Faithfulness.order(map: map, labels: labels, cells: 4), [1, 2, 0, 3])   // ties keep cell order
    }

    /// The model reads one tile. Deleting it first (the true map's order) drops the probability at
    /// the first step and stays there; a random order drops it later on average. Insertion mirrors it.
    func testCurvesOfAKnownModel() throws {
        let regions = Regions.grid(frames: 96, bands: 64, time: 12, freq: 8)   // = the 8 × 8 cells
        var w = [Double](repeating: 0, count: 96)
        w[37] = 0.1
        let model = RegionScorer(regions: regions, weights: w, bias: 0.5, maxBatch: 40)
        var patch = [Float](repeating: -3, count: 96 * 64)
        for i in 0..<patch.count where regions.labels[i] == 37 { patch[i] = 1 }
        let fill = Float(patch.reduce(0.0) { $0 + Double($1) } / Double(patch.count))
        let pFull = 0.5 + 0.1, pHidden = 0.5 + 0.1 * Double(fill)
        var s = Faithfulness.Settings()
        s.steps = 8
        let (labels, cells) = Faithfulness.cells(frames: 96, bands: 64, settings: s)
        XCTAssertEqual(cells, 96)
        let truth = [37] + (0..<96).filter { $0 != 37 }
        var rng = SeededGenerator(seed: 1)
        var shuffled = Array(0..<96)
        shuffled.seededShuffle(using: &rng)
        let curves = try patch.withUnsafeBufferPointer {
            try Faithfulness.curves(model, patches: $0.baseAddress!, count: 1, target: 0, orders: [[truth, shuffled]], labels: labels,
                                    cells: cells, settings: s, baseline: .mean)
        }[0]
        XCTAssertEqual(curves.deletion[0].count, 9)
        // Step k hides ⌊96k/8⌋ = 12k cells; the true order hides tile 37 from step 1 on.
        XCTAssertEqual(curves.deletion[0][0], pFull, accuracy: 1e-9)
        for k in 1...8 { XCTAssertEqual(curves.deletion[0][k], pHidden, accuracy: 1e-9) }
        XCTAssertEqual(curves.insertion[0][0], pHidden, accuracy: 1e-9)
        for k in 1...8 { XCTAssertEqual(curves.insertion[0][k], pFull, accuracy: 1e-9) }
        // The random order hides tile 37 at the step where its position falls.
        let pos = shuffled.firstIndex(of: 37)!
        for k in 0...8 {
            XCTAssertEqual(curves.deletion[1][k], pos < 12 * k ? pHidden : pFull, accuracy: 1e-9, "step \(k)")
        }
        let scores = Faithfulness.fileScores([curves])
        XCTAssertLessThan(scores.deletionAUC, scores.randomDeletionAUC)
        XCTAssertGreaterThan(scores.insertionAUC, scores.randomInsertionAUC)
    }

    func record(_ method: String, _ stem: String, del: Double, rdel: Double, ins: Double, rins: Double) -> TaskRecord {
        TaskRecord(status: "ok", method: method, file: 0, path: stem, audio: "", stem: stem, label: "angry", prediction: "angry",
                   probabilities: ["angry": 1], target: "angry", targetProbability: 1, patches: 1, keptPatches: 1, frames: 96,
                   secondsOfAudio: 1, parameters: [:], fingerprint: "", timing: .init(seconds: 1, forwardPasses: 10),
                   faithfulness: .init(deletion: [], insertion: [], randomDeletion: [], randomInsertion: [], deletionAUC: del,
                                       insertionAUC: ins, randomDeletionAUC: rdel, randomInsertionAUC: rins),
                   pointing: nil, audible: nil, notes: nil, rank: 0, outputs: [])
    }

    /// A method that beats random on every file is called better; one that is as often worse as
    /// better is "no better than random"; one file is too few to tell.
    func testVerdictAgainstRandom() {
        var rng = SeededGenerator(seed: 2)
        var records: [TaskRecord] = []
        for i in 0..<20 {
            let r = 0.4 + 0.1 * rng.uniform()
            records.append(record("good", "f\(i)", del: r - 0.2, rdel: r, ins: r + 0.2, rins: r))
            let noise = 0.05 * (rng.uniform() - 0.5)
            records.append(record("coin", "f\(i)", del: r + noise, rdel: r, ins: r - noise, rins: r))
        }
        records.append(record("one", "f0", del: 0.1, rdel: 0.5, ins: 0.9, rins: 0.5))
        let s = FaithfulnessSummary(records: records, failed: ["coin": 2], methods: ["good", "coin", "one"])
        XCTAssertEqual(s.methods.map(\.method), ["good", "coin", "one"])
        XCTAssertEqual(s.methods[0].deletionAUC?.verdict, "better than random")
        XCTAssertEqual(s.methods[0].insertionAUC?.verdict, "better than random")
        XCTAssertEqual(s.methods[0].deletionAUC?.advantage ?? 0, 0.2, accuracy: 1e-9)
        XCTAssertEqual(s.methods[1].deletionAUC?.verdict, "no better than random")
        XCTAssertEqual(s.methods[1].insertionAUC?.verdict, "no better than random")
        XCTAssertEqual(s.methods[1].failed, 2)
        XCTAssertEqual(s.methods[2].deletionAUC?.verdict, "too few files")
        XCTAssertTrue(s.table.contains("coin: deletion no better than random"), s.table)
    }

    func testPointingGame() {
        let fe = FrontEndConfig.yamnet
        // Frame f's centre: (160 f + 200) / 16000 s; frame 10 → 0.1125 s. Band 20's centre ≈ 1084 Hz.
        let hz = fe.melBandCentersHz[20]
        let cue = CueRegion(t0: 0.1, t1: 0.2, f0: hz - 50, f1: hz + 50)
        var map = [Float](repeating: 0, count: 30 * 64)
        map[10 * 64 + 20] = 1
        var p = Faithfulness.pointingGame(map: map, frames: 30, frontEnd: fe, cues: [cue])!
        XCTAssertTrue(p.hit)
        XCTAssertEqual(p.frame, 10)
        XCTAssertEqual(p.band, 20)
        XCTAssertEqual(p.seconds, 0.1125, accuracy: 1e-12)
        // Chance: frames whose centre is in [0.1, 0.2] (frames 9…18: 10 frames) × bands in the box (band 20 only).
        XCTAssertEqual(p.chance, 10.0 / Double(30 * 64), accuracy: 1e-12)
        map[10 * 64 + 20] = 0
        map[25 * 64 + 20] = 1
        p = Faithfulness.pointingGame(map: map, frames: 30, frontEnd: fe, cues: [cue])!
        XCTAssertFalse(p.hit)
        // A plateau points at its middle: frames 9…11 of band 20 → frame 10.
        map = [Float](repeating: 0, count: 30 * 64)
        for f in 9...11 { map[f * 64 + 20] = 2 }
        XCTAssertEqual(Faithfulness.pointingGame(map: map, frames: 30, frontEnd: fe, cues: [cue])?.frame, 10)
        // A flat map is a miss; no cues, no game.
        XCTAssertFalse(Faithfulness.pointingGame(map: [Float](repeating: 1, count: 30 * 64), frames: 30, frontEnd: fe, cues: [cue])!.hit)
        XCTAssertNil(Faithfulness.pointingGame(map: map, frames: 30, frontEnd: fe, cues: []))
    }

    func testFrequencyProfile() {
        // Two files of class "sad" and one of "angry"; maps of 2 frames × 3 bands.
        let sadA: [Float] = [0, 2, 4, 0, 2, 4]      // max 4 → [0, 0.5, 1]
        let sadB: [Float] = [1, 0, 0, 1, 0, 0]      // max 1 → [1, 0, 0]
        let angry: [Float] = [0, 0, 0, 0, 0, 0]     // zero map → zeros
        let items = [("sad", FrequencyProfile.fileProfile(sadA, frames: 2, bands: 3)),
                     ("sad", FrequencyProfile.fileProfile(sadB, frames: 2, bands: 3)),
                     ("angry", FrequencyProfile.fileProfile(angry, frames: 2, bands: 3))]
        let p = FrequencyProfile(labels: ["angry", "happy", "sad"], bandCentersHz: [100, 200, 300], layer: "fused", files: items.map { (label: $0.0, profile: $0.1) })
        XCTAssertEqual(p.profiles["sad"], [0.5, 0.25, 0.5])
        XCTAssertEqual(p.profiles["angry"], [0, 0, 0])
        XCTAssertNil(p.profiles["happy"])
        XCTAssertEqual(p.files, ["sad": 2, "angry": 1])
        let svg = p.svg()
        XCTAssertTrue(svg.contains("sad (2 files)") && svg.contains("angry (1 files)") && !svg.contains("happy"), svg)
    }
}
