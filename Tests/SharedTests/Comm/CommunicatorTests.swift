import Shared
import XCTest

/// The world of one: what every command relies on when started without mpirun.
final class CommunicatorTests: XCTestCase {
    func testWorldOfOneActsAsIdentity() {
        let world = Communicator.single()
        XCTAssertEqual(world.rank, 0)
        XCTAssertEqual(world.size, 1)
        XCTAssertFalse(world.isMPI)
        var x: [Float] = [1, 2, 3]
        world.allreduce(&x, .sum)
        XCTAssertEqual(x, [1, 2, 3])
        XCTAssertEqual(world.allgather([Int64(5)]), [[5]])
        XCTAssertEqual(world.gather([Int32(1)]) ?? [], [[1]])
        XCTAssertEqual(world.broadcast(bytes: [9]), [9])
        let outcome = CommCheck.run(world, payloadMB: 1)
        XCTAssertEqual(outcome.failed, [])
        XCTAssertGreaterThanOrEqual(outcome.passed.count, 7)
    }

    /// ser's Open MPI defaults apply only where the user has not chosen.
    func testMPIDefaultsLeaveTheUsersSettings() {
        let key = "OMPI_MCA_coll_libnbc_iallreduce_algorithm"
        XCTAssertEqual(Communicator.mpiDefaults([:]).first { $0.0 == key }?.1, "3")
        XCTAssertNil(Communicator.mpiDefaults([key: "1"]).first { $0.0 == key })
    }
}
