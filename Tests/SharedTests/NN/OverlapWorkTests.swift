import Foundation
import Shared
import XCTest

/// VGGish pieces run while YAMNet's batch-norm statistics travel (OverlapWork), and the network
/// computes the same numbers whether or not its statistics cross processes.
final class OverlapWorkTests: XCTestCase {
    func testPiecesRunInOrderUntilTheDataArrivesAndTheRestAfter() {
        var ran: [Int] = []
        let work = OverlapWork((0..<5).map { i in { ran.append(i) } })
        work.run(until: { true })
        XCTAssertEqual(ran, [], "data already there: no piece starts")
        var checks = 0
        work.run(until: { checks += 1; return ran.count >= 2 })
        XCTAssertEqual(ran, [0, 1])
        XCTAssertGreaterThan(checks, 2, "the arrival is tested between pieces")
        work.runRest()
        XCTAssertEqual(ran, [0, 1, 2, 3, 4])
        work.runRest()
        work.run(until: { false })
        XCTAssertEqual(ran, [0, 1, 2, 3, 4], "every piece runs once")
    }

    func testSharesRunPiecesByCostWhetherOrNotAnythingIsAwaited() {
        var ran: [Int] = []
        let work = OverlapWork((0..<4).map { i in { ran.append(i) } }, costs: [1, 1, 2, 4])
        work.runShare(upTo: 0.25)
        XCTAssertEqual(ran, [0, 1], "a quarter of 8: the pieces whose middles lie below 2")
        work.runShare(upTo: 0.25)
        XCTAssertEqual(ran, [0, 1], "a share already run runs nothing")
        work.runShare(upTo: 0.5)
        XCTAssertEqual(ran, [0, 1, 2])
        work.runShare(upTo: 1)
        XCTAssertEqual(ran, [0, 1, 2, 3])
        work.runShare(upTo: 1)
        work.runRest()
        XCTAssertEqual(ran, [0, 1, 2, 3], "every piece runs once")
    }

    /// Local sums that claim to cross processes and never arrive before they are waited for, so
    /// the network cuts VGGish into pieces and runs them all inside YAMNet's first batch norm.
    final class SlowStatistics: StatisticsSync {
        let profile = Profile()
        /// Whether VGGish's last section (the taps) had run when the first sums were waited for.
        private(set) var vggishDoneInFirstBatchNorm: Bool?
        /// In the backward pass, after each batch norm's work: had VGGish's backward started
        /// (its taps), and had it finished (conv1's weight gradient)?
        private(set) var backwardProgress: [(started: Bool, finished: Bool)] = []
        var crossesProcesses: Bool { true }
        func globalColumnSums(_ rows: UnsafePointer<Double>, localBatch: Int, width: Int, meanwhile: (_ arrived: () -> Bool) -> Void) -> [Double] {
            meanwhile { false }
            if vggishDoneInFirstBatchNorm == nil { vggishDoneInFirstBatchNorm = profile.seconds["fwd taps"] != nil }
            if profile.seconds["bwd head"] != nil {
                backwardProgress.append((profile.seconds["bwd taps"] != nil, profile.seconds["bwdW vggish/conv1"] != nil))
            }
            return LocalStatistics.columnSums(rows, localBatch: localBatch, width: width)
        }
    }

    func pass(_ statistics: SlowStatistics?, fixedChunks: Bool) throws -> (logits: [Float], grads: [Float]) {
        let net = try Network<Float>(config: ModelConfig(architecture: .fusionV1, classes: 4, width: 0.25))
        var rng = SeededGenerator(seed: 5)
        net.params.initialize(using: &rng)
        if let slow = statistics {
            net.statistics = slow
            net.profile = slow.profile
        }
        let batch = 16
        if fixedChunks { net.chunkPlan = (0..<4).map { $0 * 4 ..< ($0 + 1) * 4 } }
        let x = (0..<batch * net.inputSize).map { _ in Float(rng.normal()) - 3 }
        let logits = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: net.forward($0.baseAddress!, batch: batch, bn: .batch), count: batch * 4)) }
        var d = [Float](repeating: 0, count: batch * 4)
        _ = d.withUnsafeMutableBufferPointer {
            SoftmaxCrossEntropy.compute(logits, labels: (0..<batch).map { $0 % 4 }, classes: 4, globalBatch: batch, dlogits: $0.baseAddress!)
        }
        let plan = fixedChunks ? BatchPlan.single(batch: batch, deterministic: true, chunkSize: 4) : BatchPlan.single(batch: batch, deterministic: false)
        let sink = GradientSink(plan: plan, primary: net.params.grads)
        d.withUnsafeBufferPointer { _ = net.backward($0.baseAddress!, sink: sink) }
        return (logits, Array(UnsafeBufferPointer(start: net.params.grads.pointer, count: net.layout.trainableCount)))
    }

    func testFixedChunksGiveBitwiseTheSameNumbersWithOverlap() throws {
        let slow = SlowStatistics()
        let plain = try pass(nil, fixedChunks: true), overlapped = try pass(slow, fixedChunks: true)
        XCTAssertEqual(slow.vggishDoneInFirstBatchNorm, true, "VGGish should run while the statistics travel")
        // Backward: VGGish's layers are spread over YAMNet's batch norms, and done by the last.
        XCTAssertEqual(slow.backwardProgress.first?.started, true, "VGGish's backward should start in the first batch norm")
        XCTAssertEqual(slow.backwardProgress.first?.finished, false, "VGGish's backward should not all run in one batch norm")
        XCTAssertEqual(slow.backwardProgress.last?.finished, true)
        XCTAssertEqual(plain.logits, overlapped.logits)
        XCTAssertEqual(plain.grads, overlapped.grads)
    }

    func testCutChunksDifferOnlyByRounding() throws {
        let slow = SlowStatistics()
        let plain = try pass(nil, fixedChunks: false), overlapped = try pass(slow, fixedChunks: false)
        XCTAssertEqual(slow.vggishDoneInFirstBatchNorm, true)
        let scale = Double(plain.grads.map(abs).max()!)
        let worst = zip(plain.grads, overlapped.grads).map { Double(abs($0 - $1)) }.max()! / scale
        XCTAssertLessThan(worst, 1e-4)
        let logitWorst = zip(plain.logits, overlapped.logits).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(logitWorst, 1e-4)
    }
}
