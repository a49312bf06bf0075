import CMPI
import Foundation

/// Element types that can travel through MPI collectives.
public protocol MPIScalar {
    static var mpiType: MPI_Datatype { get }
}
extension Float: MPIScalar { public static var mpiType: MPI_Datatype { ser_mpi_float() } }
extension Double: MPIScalar { public static var mpiType: MPI_Datatype { ser_mpi_double() } }
extension Int64: MPIScalar { public static var mpiType: MPI_Datatype { ser_mpi_int64() } }
extension UInt64: MPIScalar { public static var mpiType: MPI_Datatype { ser_mpi_uint64() } }
extension Int32: MPIScalar { public static var mpiType: MPI_Datatype { ser_mpi_int32() } }
extension UInt8: MPIScalar { public static var mpiType: MPI_Datatype { ser_mpi_byte() } }

public enum ReduceOp {
    case sum, max, min
    var mpi: MPI_Op {
        switch self {
        case .sum: return ser_mpi_sum()
        case .max: return ser_mpi_max()
        case .min: return ser_mpi_min()
        }
    }
}

/// A thin layer over MPI's world communicator.
///
/// When `ser` is started without a launcher (no `mpirun`, no Slurm step) it never calls `MPI_Init`
/// and every operation acts on a world of one process, so all commands work the same in local mode.
/// Only the thread that created the communicator calls MPI (MPI_THREAD_FUNNELED), except where a
/// method says otherwise.
public final class Communicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// Ranks on this node and this rank's index among them (from the launcher; 1 and 0 alone).
    public let localSize: Int
    public let localRank: Int
    /// True when MPI_Init was called: collectives go over the network.
    public let isMPI: Bool
    private let comm: MPI_Comm?

    public var isRoot: Bool { rank == 0 }

    private init(rank: Int, size: Int, localRank: Int, localSize: Int, comm: MPI_Comm?) {
        self.rank = rank
        self.size = size
        self.localRank = localRank
        self.localSize = localSize
        self.comm = comm
        self.isMPI = comm != nil
    }

    /// True if a launcher started this process as part of an MPI job.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        if let forced = env["SER_MPI"] { return forced == "1" }
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    /// Ranks on this node as the launcher reports them, readable before MPI starts.
    public static var launcherLocalSize: Int {
        let env = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"] {
            if let v = env[key], let n = Int(v.split(separator: "(").first ?? "") { return n }
        }
        return 1
    }

    nonisolated(unsafe) private static var started: Communicator?

    /// Open MPI settings ser wants that the user has not set (MPI reads them from the
    /// environment when it starts).
    ///
    /// libnbc's non-blocking allreduce, by default, reduces an in-place buffer to rank 0 and
    /// broadcasts it back on fewer than 4 ranks: rank 0 adds everything, then everyone waits for
    /// the copy. Reduce-scatter + allgather (algorithm 3) has each rank add only its share. For
    /// fusion-v1's gradient buckets on 2 ranks a probe took 34–41 → 10–11 ms, and in training
    /// each rank spends about 12 ms less per step (BENCHMARKS.md, session 21). With fewer elements
    /// than ranks libnbc takes its ring instead; every rank still ends with the same sums.
    public static func mpiDefaults(_ env: [String: String]) -> [(String, String)] {
        let wanted = [("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3")]
        return wanted.filter { env[$0.0] == nil }
    }

    /// Starts MPI if a launcher is present (once per process) and returns the world.
    public static func world() -> Communicator {
        if let c = started { return c }
        let c: Communicator
        if launchedByMPI {
            for (key, value) in mpiDefaults(ProcessInfo.processInfo.environment) { setenv(key, value, 1) }
            var provided: Int32 = 0
            // MPI may read its own options from argv; ser passes none, so it gets an empty list.
            MPI_Init_thread(nil, nil, Int32(ser_mpi_thread_funneled()), &provided)
            let w = ser_mpi_comm_world()
            var r: Int32 = 0, s: Int32 = 0
            MPI_Comm_rank(w, &r)
            MPI_Comm_size(w, &s)
            // Ranks sharing a node: split by shared-memory domain.
            var local: MPI_Comm? = nil
            MPI_Comm_split_type(w, Int32(ser_mpi_comm_type_shared()), r, ser_mpi_info_null(), &local)
            var lr: Int32 = 0, ls: Int32 = 1
            if let local {
                MPI_Comm_rank(local, &lr)
                MPI_Comm_size(local, &ls)
                var l: MPI_Comm? = local
                MPI_Comm_free(&l)
            }
            c = Communicator(rank: Int(r), size: Int(s), localRank: Int(lr), localSize: Int(ls), comm: w)
            atexit { Communicator.finalizeIfNeeded() }
        } else {
            c = Communicator(rank: 0, size: 1, localRank: 0, localSize: 1, comm: nil)
        }
        started = c
        return c
    }

    /// A world of one that never touches MPI (tests, tools that run inside another process).
    public static func single() -> Communicator {
        Communicator(rank: 0, size: 1, localRank: 0, localSize: 1, comm: nil)
    }

    nonisolated(unsafe) private static var finalized = false
    static func finalizeIfNeeded() {
        guard started?.isMPI == true, !finalized else { return }
        finalized = true
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        if flag == 0 { MPI_Finalize() }
    }

    /// Ends MPI cleanly (collective): call at the end of a successful command.
    public func finalize() {
        if isMPI { Communicator.finalizeIfNeeded() }
    }

    // MARK: - Identity

    /// This process's host name as MPI reports it.
    public var processorName: String {
        guard isMPI else { return ProcessInfo.processInfo.hostName }
        var buf = [CChar](repeating: 0, count: Int(ser_mpi_max_processor_name()) + 1)
        var len: Int32 = 0
        MPI_Get_processor_name(&buf, &len)
        return String(cString: buf)
    }

    /// Every rank's host name, indexed by rank (collective).
    public func hostNames() -> [String] {
        allgatherStrings(processorName)
    }

    // MARK: - Synchronisation

    public func barrier() {
        guard let comm else { return }
        MPI_Barrier(comm)
    }

    /// Prints the message on standard error and ends every rank of the job with `code`.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        let prefix = size > 1 ? "ser[rank \(rank)]: " : "ser: "
        FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
        if let comm { MPI_Abort(comm, code) }
        exit(code)
    }

    // MARK: - Collectives on typed buffers

    /// Sums (or max/min) `buffer` over all ranks, in place, on every rank.
    public func allreduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp = .sum) {
        guard let comm, let base = buffer.baseAddress, buffer.count > 0 else { return }
        // MPI counts are Int32: large buffers go in pieces.
        var offset = 0
        while offset < buffer.count {
            let n = min(buffer.count - offset, 1 << 30)
            MPI_Allreduce(ser_mpi_in_place(), base + offset, Int32(n), T.mpiType, op.mpi, comm)
            offset += n
        }
    }

    public func allreduce<T: MPIScalar>(_ array: inout [T], _ op: ReduceOp = .sum) {
        array.withUnsafeMutableBufferPointer { allreduce($0, op) }
    }

    public func allreduce<T: MPIScalar>(_ value: T, _ op: ReduceOp = .sum) -> T {
        var a = [value]
        allreduce(&a, op)
        return a[0]
    }

    /// Copies `root`'s buffer to every rank.
    public func broadcast<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int = 0) {
        guard let comm, let base = buffer.baseAddress, buffer.count > 0 else { return }
        var offset = 0
        while offset < buffer.count {
            let n = min(buffer.count - offset, 1 << 30)
            MPI_Bcast(base + offset, Int32(n), T.mpiType, Int32(root), comm)
            offset += n
        }
    }

    public func broadcast<T: MPIScalar>(_ array: inout [T], root: Int = 0) {
        array.withUnsafeMutableBufferPointer { broadcast($0, root: root) }
    }

    /// Sends `root`'s bytes (of any length) to every rank; other ranks' input is ignored.
    public func broadcast(bytes: [UInt8], root: Int = 0) -> [UInt8] {
        guard isMPI else { return bytes }
        var count = [Int64(rank == root ? bytes.count : 0)]
        broadcast(&count, root: root)
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
        broadcast(&out, root: root)
        return out
    }

    /// Collects `values` from every rank on every rank, concatenated in rank order.
    /// Ranks may send different counts.
    public func allgather<T: MPIScalar>(_ values: [T]) -> [[T]] {
        guard let comm else { return [values] }
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(values.count)
        MPI_Allgather(&mine, 1, ser_mpi_int32(), &counts, 1, ser_mpi_int32(), comm)
        var displs = [Int32](repeating: 0, count: size)
        for i in 1..<size { displs[i] = displs[i - 1] + counts[i - 1] }
        let total = Int(displs[size - 1] + counts[size - 1])
        var out = [T](unsafeUninitializedCapacity: max(total, 1)) { _, n in n = max(total, 1) }
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                _ = MPI_Allgatherv(UnsafeMutableRawPointer(mutating: src.baseAddress), mine, T.mpiType,
                                   dst.baseAddress, counts, displs, T.mpiType, comm)
            }
        }
        return (0..<size).map { r in Array(out[Int(displs[r])..<Int(displs[r] + counts[r])]) }
    }

    /// Collects `values` from every rank at `root` (nil elsewhere), per rank.
    public func gather<T: MPIScalar>(_ values: [T], root: Int = 0) -> [[T]]? {
        guard let comm else { return [values] }
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(values.count)
        MPI_Gather(&mine, 1, ser_mpi_int32(), &counts, 1, ser_mpi_int32(), Int32(root), comm)
        var displs = [Int32](repeating: 0, count: size)
        if rank == root { for i in 1..<size { displs[i] = displs[i - 1] + counts[i - 1] } }
        let total = rank == root ? Int(displs[size - 1] + counts[size - 1]) : 0
        var out = [T](unsafeUninitializedCapacity: max(total, 1)) { _, n in n = max(total, 1) }
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                _ = MPI_Gatherv(UnsafeMutableRawPointer(mutating: src.baseAddress), mine, T.mpiType,
                                dst.baseAddress, counts, displs, T.mpiType, Int32(root), comm)
            }
        }
        guard rank == root else { return nil }
        return (0..<size).map { r in Array(out[Int(displs[r])..<Int(displs[r] + counts[r])]) }
    }

    public func allgatherStrings(_ s: String) -> [String] {
        allgather(Array(s.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    public func gatherStrings(_ s: String, root: Int = 0) -> [String]? {
        gather(Array(s.utf8), root: root)?.map { String(decoding: $0, as: UTF8.self) }
    }

    // MARK: - Point to point

    /// Sends bytes to `dest` with `tag` (blocking until the buffer can be reused).
    public func send(_ bytes: [UInt8], to dest: Int, tag: Int) {
        guard let comm else { preconditionFailure("send needs an MPI job of more than one rank") }
        bytes.withUnsafeBufferPointer { b in
            _ = MPI_Send(UnsafeMutableRawPointer(mutating: b.baseAddress), Int32(b.count), ser_mpi_byte(),
                         Int32(dest), Int32(tag), comm)
        }
    }

    /// Receives a message of any length from `source` (nil: any rank) with `tag` (nil: any tag).
    public func receive(from source: Int? = nil, tag: Int? = nil) -> (bytes: [UInt8], source: Int, tag: Int) {
        guard let comm else { preconditionFailure("receive needs an MPI job of more than one rank") }
        var status = MPI_Status()
        MPI_Probe(Int32(source ?? Int(ser_mpi_any_source())), Int32(tag ?? Int(ser_mpi_any_tag())), comm, &status)
        var count: Int32 = 0
        MPI_Get_count(&status, ser_mpi_byte(), &count)
        let src = ser_mpi_status_source(&status), tg = ser_mpi_status_tag(&status)
        var bytes = [UInt8](repeating: 0, count: Int(count))
        bytes.withUnsafeMutableBufferPointer { b in
            _ = MPI_Recv(b.baseAddress, count, ser_mpi_byte(), src, tg, comm, ser_mpi_status_ignore())
        }
        return (bytes, Int(src), Int(tg))
    }

    /// True if a message from `source` (nil: any) with `tag` (nil: any) is waiting.
    public func hasMessage(from source: Int? = nil, tag: Int? = nil) -> Bool {
        guard let comm else { return false }
        var flag: Int32 = 0
        var status = MPI_Status()
        MPI_Iprobe(Int32(source ?? Int(ser_mpi_any_source())), Int32(tag ?? Int(ser_mpi_any_tag())), comm, &flag, &status)
        return flag != 0
    }

    // MARK: - Non-blocking collectives

    /// A pending non-blocking operation. The buffer it works on must stay valid until `wait()`.
    public final class Request {
        fileprivate var handle: MPI_Request?
        fileprivate init(_ h: MPI_Request?) { handle = h }
        public var isDone: Bool {
            guard handle != nil else { return true }
            var h = handle
            var flag: Int32 = 0
            MPI_Test(&h, &flag, ser_mpi_status_ignore())
            handle = flag != 0 ? nil : h
            return flag != 0
        }
        public func wait() {
            guard handle != nil else { return }
            var h = handle
            MPI_Wait(&h, ser_mpi_status_ignore())
            handle = nil
        }
    }

    /// Starts an in-place allreduce of `buffer`; `wait()` on the result before reading it.
    public func iallreduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp = .sum) -> Request {
        guard let comm, let base = buffer.baseAddress, buffer.count > 0 else { return Request(nil) }
        precondition(buffer.count < Int(Int32.max), "non-blocking allreduce larger than 2^31 elements")
        var req: MPI_Request? = ser_mpi_request_null()
        MPI_Iallreduce(ser_mpi_in_place(), base, Int32(buffer.count), T.mpiType, op.mpi, comm, &req)
        return Request(req)
    }

    /// Starts a send of `buffer` (raw bytes) to `dest`.
    public func isend(_ buffer: UnsafeRawBufferPointer, to dest: Int, tag: Int) -> Request {
        guard let comm else { preconditionFailure("isend needs an MPI job") }
        var req: MPI_Request? = ser_mpi_request_null()
        MPI_Isend(UnsafeMutableRawPointer(mutating: buffer.baseAddress), Int32(buffer.count), ser_mpi_byte(),
                  Int32(dest), Int32(tag), comm, &req)
        return Request(req)
    }

    /// Starts a receive into `buffer` (raw bytes, exact length) from `source`.
    public func irecv(_ buffer: UnsafeMutableRawBufferPointer, from source: Int, tag: Int) -> Request {
        guard let comm else { preconditionFailure("irecv needs an MPI job") }
        var req: MPI_Request? = ser_mpi_request_null()
        MPI_Irecv(buffer.baseAddress, Int32(buffer.count), ser_mpi_byte(), Int32(source), Int32(tag), comm, &req)
        return Request(req)
    }
}
