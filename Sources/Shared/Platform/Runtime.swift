import Foundation

/// Process start-up shared by every `ser` command.
public enum Runtime {
    /// Starts MPI (or a world of one), and sets the compute threads of this rank:
    /// `threads` if given, else the rank's share of the node's cores.
    public static func start(threads: Int? = nil) -> Communicator {
        let world = Communicator.world()
        ComputeThreads.configure(threads ?? ComputeThreads.defaultCount(localRanks: world.localSize))
        return world
    }

    /// `start`, then the precision of the matrix products (before any compute thread runs).
    /// A CPU without bf16 tiles is refused with a message, on every rank alike.
    public static func start(threads: Int?, precision: MatmulPrecision) throws -> Communicator {
        let world = start(threads: threads)
        do {
            try MatmulPrecision.select(precision)
        } catch {
            world.finalize()
            throw error
        }
        return world
    }
}
