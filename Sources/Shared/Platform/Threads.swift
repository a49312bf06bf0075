import CBLAS
import Dispatch
import Foundation

/// How many compute threads one rank uses, and the loops that spread work over them.
///
/// A rank bound to cores (Slurm, `mpirun --bind-to core`) uses the cores it is bound to; an unbound
/// rank shares the machine's cores with the other ranks on its node.
///
/// The network runs a batch as independent chunks of samples, one chunk per thread at a time
/// (`parallelChunks`), and OpenBLAS is kept single-threaded: every GEMM then has the same shape
/// whatever the number of threads or ranks (so results do not depend on them), each core runs its
/// own GEMM at the single-thread efficiency of OpenBLAS, and no BLAS worker threads spin while
/// our own loops run. Loops outside a chunk use all threads (`parallelFor`); inside a chunk they
/// run on the chunk's thread.
public enum ComputeThreads {
    nonisolated(unsafe) private static var count = 1
    nonisolated(unsafe) private static var key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    public static var current: Int { count }

    /// The default: the rank's affinity mask, divided among the node's ranks when they are unbound.
    public static func defaultCount(localRanks: Int) -> Int {
        let usable = CPUInfo.usableCores
        if usable < CPUInfo.onlineCores { return usable }  // bound: the mask is this rank's own
        return max(1, usable / max(1, localRanks))
    }

    /// Sets the thread count of this rank (OpenBLAS itself stays single-threaded).
    public static func configure(_ n: Int) {
        count = max(1, n)
        BLASKernel.setThreads(1)
    }

    /// True on a thread that is running one chunk of a `parallelChunks` call.
    public static var insideChunk: Bool { pthread_getspecific(key) != nil }

    /// Runs `body(i)` for i in 0..<n, spread over the compute threads; returns when all are done.
    /// Inside a chunk it runs serially on the calling thread.
    @inlinable
    public static func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        let t = min(current, n)
        if t <= 1 || insideChunk {
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

    /// Runs `body(item, worker)` for every item on up to `current` threads, each item as one chunk:
    /// loops inside run on the item's thread. `worker` (0..<current) selects per-thread scratch.
    public static func parallelChunks(_ n: Int, _ body: (Int, Int) -> Void) {
        let t = min(current, n)
        if t <= 1 || insideChunk {
            let was = pthread_getspecific(key)
            pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
            for i in 0..<n { body(i, 0) }
            pthread_setspecific(key, was)
            return
        }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: t) { worker in
                pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
                // Items are dealt round-robin so that equal chunks balance the threads.
                var i = worker
                while i < n {
                    body(i, worker)
                    i += t
                }
                pthread_setspecific(key, nil)
            }
        }
    }
}
