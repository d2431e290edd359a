namespace Ensemble.Coordination;

/// <summary>
/// Which store failures mean "out of reach for now" (connection lost, session expired and being replaced,
/// no answer in time) rather than a wrong request: what can only be waited out, with backoff.
/// </summary>
public static class StoreTrouble
{
    public static bool IsTransient(Exception ex) => ex.GetBaseException() switch
    {
        StoreException { Code: StoreErrorCode.ConnectionLoss or StoreErrorCode.SessionExpired or StoreErrorCode.OperationTimeout } => true,
        TimeoutException => true,
        _ => ex is AggregateException { InnerExceptions.Count: > 0 } all && all.InnerExceptions.All(IsTransient),
    };
}
