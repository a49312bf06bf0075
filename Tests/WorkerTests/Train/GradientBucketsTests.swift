import Worker
import XCTest

/// The gradient exchange's buckets: the same cuts, in the same order, on every rank, whatever
/// order the tensors finish in.
final class GradientBucketsTests: XCTestCase {
    /// Tensors of these sizes laid out one after another in the flat buffer.
    let sizes = [5, 17, 3, 40, 8, 11, 2, 30]
    var tensors: [Range<Int>] {
        var start = 0
        return sizes.map { n in defer { start += n }; return start ..< start + n }
    }

    func handOut(order: [Int], bucketElements: Int) -> (buckets: [Range<Int>], whenLast: [Int]) {
        var b = GradientBuckets(total: sizes.reduce(0, +), bucketElements: bucketElements)
        var buckets: [Range<Int>] = [], when: [Int] = []
        for (step, t) in order.enumerated() {
            let out = b.finished(tensors[t])
            buckets += out
            when += out.map { _ in step }
        }
        buckets += b.rest()
        return (buckets, when)
    }

    func testBackwardOrderSendsEachBucketOnceItsTensorsAreDone() {
        let order = Array(tensors.indices.reversed())
        let (buckets, when) = handOut(order: order, bucketElements: 32)
        // 116 elements: cuts at 84, 52, 20, then the rest.
        XCTAssertEqual(buckets, [84 ..< 116, 52 ..< 84, 20 ..< 52, 0 ..< 20])
        XCTAssertEqual(buckets.count, when.count, "everything is sent before rest()")
        // 84 ..< 116 needs tensors 7 (86 ..< 116) and 6 (84 ..< 86): complete after the second report.
        XCTAssertEqual(when.first, 1)
    }

    func testEarlyTensorsWaitForTheSuffixAndGiveTheSameBuckets() {
        let inOrder = handOut(order: Array(tensors.indices.reversed()), bucketElements: 32).buckets
        // The first four tensors (a branch computed out of order) finish before the rest.
        let early = handOut(order: [3, 2, 1, 0, 7, 6, 5, 4], bucketElements: 32)
        XCTAssertEqual(early.buckets, inOrder)
        // Nothing can go before tensor 7, the end of the buffer, is done.
        XCTAssertEqual(early.whenLast.first, 5)
        // Tensor 4 closes the gap: everything below it is sent at once.
        XCTAssertEqual(early.whenLast.suffix(3), [7, 7, 7])
    }

    func testTensorsNeverReportedAreSentByRest() {
        var b = GradientBuckets(total: 116, bucketElements: 32)
        XCTAssertEqual(b.finished(tensors[0]), [])
        XCTAssertEqual(b.readyFrom, 116)
        XCTAssertEqual(b.rest(), [84 ..< 116, 52 ..< 84, 20 ..< 52, 0 ..< 20])
        XCTAssertEqual(b.rest(), [], "rest() hands out each bucket once")
    }
}
