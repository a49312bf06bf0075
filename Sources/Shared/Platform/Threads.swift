import Dispatch
import Foundation

/// How many compute threads one rank uses, and a parallel loop over them.
///
/// A rank bound to cores (Slurm, `mpirun --bind-to core`) uses the cores it is bound to; an unbound
/// rank shares the machine's cores with the other ranks on its node. The value is decided once at
/// start-up (`configure`) and passed to OpenBLAS, so that BLAS and our own loops never
/// oversubscribe the cores.
public enum ComputeThreads {
    nonisolated(unsafe) private static var count = 1

    public static var current: Int { count }

    /// The default: the rank's affinity mask, divided among the node's ranks when they are unbound.
    public static func defaultCount(localRanks: Int) -> Int {
        let usable = CPUInfo.usableCores
        if usable < CPUInfo.onlineCores { return usable }  // bound: the mask is this rank's own
        return max(1, usable / max(1, localRanks))
    }

    /// Sets the thread count for our loops and for OpenBLAS.
    public static func configure(_ n: Int) {
        count = max(1, n)
        BLASKernel.setThreads(count)
    }

    /// Runs `body(i)` for i in 0..<n, spread over the compute threads; returns when all are done.
    /// Work items should be coarse (a sample, a channel block): each call has a few µs overhead.
    @inlinable
    public static func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        let t = min(current, n)
        if t <= 1 {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: t) { worker in
                // Static contiguous ranges keep the result independent of scheduling.
                let lo = worker * n / t, hi = (worker + 1) * n / t
                for i in lo..<hi { body(i) }
            }
        }
    }
}
