import Foundation

/// Float and Double entry points of the generic kernels, for models defined in other modules
/// (the model families in Worker).
///
/// A generic function called from another module runs *unspecialised* unless its body is
/// available there: every multiply and add then goes through witness tables. ResNet-SE's step ran
/// more than ten times slower that way (perf: witness thunks and value-witness copies on top, sgemm
/// at 3 %). `@_specialize(exported: true)` makes the Float and Double versions of these wrappers
/// public symbols that a caller specialised for that type links to directly; inside them the
/// kernels are specialised (and inlined) by this module's whole-module optimisation.
/// Each forwards to the free function of the same name; see it for shapes and semantics.
public enum Kernels {
    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func convForward<S: Real>(_ x: UnsafePointer<S>, _ w: UnsafePointer<S>, _ bias: UnsafePointer<S>?,
                                            _ y: UnsafeMutablePointer<S>, batch: Int, _ g: ConvGeometry, relu: Bool,
                                            workspace: UnsafeMutablePointer<S>) {
        Shared.convForward(x, w, bias, y, batch: batch, g, relu: relu, workspace: workspace)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func convBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ w: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                                                 batch: Int, _ g: ConvGeometry, workspace: UnsafeMutablePointer<S>) {
        Shared.convBackwardData(dy, w, dx, batch: batch, g, workspace: workspace)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func convBackwardWeights<S: Real>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, _ dw: UnsafeMutablePointer<S>,
                                                    _ db: UnsafeMutablePointer<S>?, batch: Int, _ g: ConvGeometry,
                                                    workspace: UnsafeMutablePointer<S>) {
        Shared.convBackwardWeights(x, dy, dw, db, batch: batch, g, workspace: workspace)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func winogradForward<S: Real>(_ x: UnsafePointer<S>, _ w: UnsafePointer<S>, _ bias: UnsafePointer<S>?,
                                                _ y: UnsafeMutablePointer<S>, batch: Int, _ g: ConvGeometry, relu: Bool,
                                                workspace: UnsafeMutablePointer<S>) {
        Shared.winogradForward(x, w, bias, y, batch: batch, g, relu: relu, workspace: workspace)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func winogradBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ w: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                                                     batch: Int, _ g: ConvGeometry, workspace: UnsafeMutablePointer<S>) {
        Shared.winogradBackwardData(dy, w, dx, batch: batch, g, workspace: workspace)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func winogradBackwardWeights<S: Real>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, _ dw: UnsafeMutablePointer<S>,
                                                        _ db: UnsafeMutablePointer<S>?, batch: Int, _ g: ConvGeometry,
                                                        workspace: UnsafeMutablePointer<S>) {
        Shared.winogradBackwardWeights(x, dy, dw, db, batch: batch, g, workspace: workspace)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func bnSampleSumsAndSquares<S: Real>(_ x: UnsafePointer<S>, batch: Int, positions: Int, channels: Int,
                                                        _ out: UnsafeMutablePointer<Double>) {
        Shared.bnSampleSumsAndSquares(x, batch: batch, positions: positions, channels: channels, out)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func bnTakeBatchStatistics<S: Real>(_ sums: [Double], channels: Int, count: Double, epsilon: Double, momentum: Double,
                                                       update: Bool, mean: UnsafeMutablePointer<S>, invStd: UnsafeMutablePointer<S>,
                                                       movingMean: UnsafeMutablePointer<S>, movingVariance: UnsafeMutablePointer<S>) {
        Shared.bnTakeBatchStatistics(sums, channels: channels, count: count, epsilon: epsilon, momentum: momentum, update: update,
                                     mean: mean, invStd: invStd, movingMean: movingMean, movingVariance: movingVariance)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func bnApply<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, mean: UnsafePointer<S>, invStd: UnsafePointer<S>,
                                        gamma: UnsafePointer<S>?, beta: UnsafePointer<S>, rows: Int, channels: Int, relu: Bool) {
        Shared.bnApply(x, y, mean: mean, invStd: invStd, gamma: gamma, beta: beta, rows: rows, channels: channels, relu: relu)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func bnBackwardSampleSums<S: Real>(_ dy: UnsafePointer<S>, _ x: UnsafePointer<S>, mean: UnsafePointer<S>,
                                                     invStd: UnsafePointer<S>, batch: Int, positions: Int, channels: Int,
                                                     _ out: UnsafeMutablePointer<Double>) {
        Shared.bnBackwardSampleSums(dy, x, mean: mean, invStd: invStd, batch: batch, positions: positions, channels: channels, out)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func bnBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ x: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                                               mean: UnsafePointer<S>, invStd: UnsafePointer<S>, gamma: UnsafePointer<S>?,
                                               sumDy: UnsafePointer<S>, sumDyXhat: UnsafePointer<S>, count: Int, rows: Int, channels: Int) {
        Shared.bnBackwardData(dy, x, dx, mean: mean, invStd: invStd, gamma: gamma, sumDy: sumDy, sumDyXhat: sumDyXhat,
                              count: count, rows: rows, channels: channels)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func bnBackwardDataFixed<S: Real>(_ dy: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>, invStd: UnsafePointer<S>,
                                                    gamma: UnsafePointer<S>?, rows: Int, channels: Int) {
        Shared.bnBackwardDataFixed(dy, dx, invStd: invStd, gamma: gamma, rows: rows, channels: channels)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func globalAvgPool<S: Real>(_ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, batch: Int, positions: Int, c: Int) {
        Shared.globalAvgPool(x, y, batch: batch, positions: positions, c: c)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func reluBackward<S: Real>(_ dy: UnsafeMutablePointer<S>, _ y: UnsafePointer<S>, count: Int) {
        Shared.reluBackward(dy, y, count: count)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func denseForward<S: Real>(_ x: UnsafePointer<S>, _ w: UnsafePointer<S>, _ b: UnsafePointer<S>?,
                                             _ y: UnsafeMutablePointer<S>, batch: Int, inputs: Int, outputs: Int, relu: Bool) {
        Shared.denseForward(x, w, b, y, batch: batch, inputs: inputs, outputs: outputs, relu: relu)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func denseBackwardData<S: Real>(_ dy: UnsafePointer<S>, _ w: UnsafePointer<S>, _ dx: UnsafeMutablePointer<S>,
                                                  batch: Int, inputs: Int, outputs: Int) {
        Shared.denseBackwardData(dy, w, dx, batch: batch, inputs: inputs, outputs: outputs)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func denseBackwardWeights<S: Real>(_ x: UnsafePointer<S>, _ dy: UnsafePointer<S>, _ dw: UnsafeMutablePointer<S>,
                                                     _ db: UnsafeMutablePointer<S>?, batch: Int, inputs: Int, outputs: Int) {
        Shared.denseBackwardWeights(x, dy, dw, db, batch: batch, inputs: inputs, outputs: outputs)
    }

    @_specialize(exported: true, where S == Float)
    @_specialize(exported: true, where S == Double)
    public static func softmaxCrossEntropy<S: Real>(_ logits: UnsafePointer<S>, labels: [Int], classes: Int, globalBatch: Int,
                                                    dlogits: UnsafeMutablePointer<S>?) -> [Double] {
        Shared.softmaxCrossEntropy(logits, labels: labels, classes: classes, globalBatch: globalBatch, dlogits: dlogits)
    }
}
