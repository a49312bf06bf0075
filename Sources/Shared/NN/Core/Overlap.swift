import Foundation

/// Work a pass does while its batch-norm statistics travel between ranks.
///
/// fusion-v1's two branches are independent until the fusion. In the forward pass, while YAMNet's
/// batch norm waits for the other ranks' sums, a rank computes VGGish piece by piece (one layer
/// over one slice of the samples) for as long as the sums have not arrived (`run(until:)`): a
/// rank that is ahead works instead of waiting, and the jitter between ranks is absorbed until
/// the pieces run out. In the backward pass VGGish's layers are handed out in fixed shares, one
/// per batch norm (`runShare`). Either way the arithmetic is that of running everything in
/// sequence, and every rank posts its messages in the same order (forward pieces use no MPI;
/// backward pieces post gradient buckets only after YAMNet's last collective, see
/// `Network.backward`).
public final class OverlapWork {
    private let pieces: [() -> Void]
    /// Running totals of the pieces' estimated costs: `done[i]` before piece i runs.
    private let done: [Double]
    private var next = 0

    /// `pieces` run in order, each at most once; `costs` (any unit, one per piece; default: equal)
    /// only matter to `runShare`.
    public init(_ pieces: [() -> Void], costs: [Double]? = nil) {
        precondition(costs == nil || costs!.count == pieces.count, "one cost per piece")
        self.pieces = pieces
        var sum = 0.0
        done = [0] + (costs ?? pieces.map { _ in 1 }).map { sum += $0; return sum }
    }

    /// Runs pieces, whether or not anything is awaited, until `fraction` of their total cost has
    /// run (a piece runs if its middle falls within the share). Fixed shares give every rank the
    /// same schedule, so a piece can be large: the other ranks run the same piece at the same
    /// point, and the data has the piece's time to arrive. (Pieces run only while waiting must be
    /// small: a rank that starts a large one late holds the others up for all of it.)
    public func runShare(upTo fraction: Double) {
        let target = fraction * done[pieces.count]
        while next < pieces.count && (done[next] + done[next + 1]) / 2 <= target { runNext() }
    }

    /// Runs pieces until `arrived()` says the awaited data is there, or none is left. Ranks in
    /// step exchange their sums within microseconds: a piece starts only after a short grace,
    /// so that pieces are kept for the moments when the other rank really is behind.
    public func run(until arrived: () -> Bool) {
        while next < pieces.count {
            let start = DispatchTime.now().uptimeNanoseconds
            repeat {
                if arrived() { return }
            } while DispatchTime.now().uptimeNanoseconds - start < OverlapWork.graceNanoseconds
            runNext()
        }
    }

    /// How long the data may take before a piece starts.
    static let graceNanoseconds: UInt64 = 50_000

    /// Runs whatever is left.
    public func runRest() {
        while next < pieces.count { runNext() }
    }

    private func runNext() {
        let piece = pieces[next]
        next += 1
        piece()
    }
}
