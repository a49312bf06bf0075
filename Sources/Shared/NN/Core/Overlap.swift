import Foundation

/// Work a pass does while its batch-norm statistics travel between ranks.
///
/// fusion-v1's two branches are independent until the fusion, so while YAMNet's batch norm waits
/// for the other ranks' sums a rank computes VGGish, piece by piece, for as long as the sums have
/// not arrived: a rank that is ahead works instead of waiting, and the jitter between ranks is
/// absorbed until the pieces run out. The pieces only compute (no MPI), so the order in which
/// the ranks post their messages and the arithmetic are those of running everything in sequence.
public final class OverlapWork {
    private let pieces: [() -> Void]
    private var next = 0

    /// `pieces` run in order, each at most once.
    public init(_ pieces: [() -> Void]) {
        self.pieces = pieces
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
