using System.Buffers.Binary;
using System.Text;

namespace Ensemble.ZooKeeper;

/// <summary>Writes one length-prefixed jute frame (big-endian) into a growable buffer.</summary>
internal sealed class JuteWriter
{
    private byte[] _buffer;
    private int _length;

    /// <summary>Starts a frame: reserves the 4-byte length prefix.</summary>
    public JuteWriter(int capacity = 128)
    {
        _buffer = new byte[Math.Max(capacity, 16)];
        _length = 4;
    }

    private Span<byte> Take(int count)
    {
        if (_length + count > _buffer.Length)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }

    public void Int(int value) => BinaryPrimitives.WriteInt32BigEndian(Take(4), value);
    public void Long(long value) => BinaryPrimitives.WriteInt64BigEndian(Take(8), value);
    public void Bool(bool value) => Take(1)[0] = value ? (byte)1 : (byte)0;

    public void String(string? value)
    {
        if (value is null) { Int(-1); return; }
        var count = Encoding.UTF8.GetByteCount(value);
        Int(count);
        Encoding.UTF8.GetBytes(value, Take(count));
    }

    public void Buffer(ReadOnlySpan<byte> value, bool isNull = false)
    {
        if (isNull) { Int(-1); return; }
        Int(value.Length);
        value.CopyTo(Take(value.Length));
    }

    public void Acls(IReadOnlyList<Acl>? acls)
    {
        if (acls is null) { Int(-1); return; }
        Int(acls.Count);
        foreach (var acl in acls)
        {
            Int(acl.Perms);
            String(acl.Id.Scheme);
            String(acl.Id.Identity);
        }
    }

    public void Strings(IReadOnlyList<string> values)
    {
        Int(values.Count);
        foreach (var v in values) String(v);
    }

    public int Length => _length;

    /// <summary>Fills the length prefix and returns the frame (prefix included).</summary>
    public byte[] ToFrame()
    {
        BinaryPrimitives.WriteInt32BigEndian(_buffer, _length - 4);
        return _buffer.AsSpan(0, _length).ToArray();
    }
}

/// <summary>Reads jute values from one received frame payload.</summary>
internal ref struct JuteReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public readonly int Remaining => _data.Length - _pos;

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || _pos + count > _data.Length)
            throw new KeeperException(KeeperErrorCode.MarshallingError, null, "Truncated or malformed reply from the server.");
        var span = _data.Slice(_pos, count);
        _pos += count;
        return span;
    }

    public int Int() => BinaryPrimitives.ReadInt32BigEndian(Take(4));
    public long Long() => BinaryPrimitives.ReadInt64BigEndian(Take(8));
    public bool Bool() => Take(1)[0] != 0;

    public string? String()
    {
        var count = Int();
        return count < 0 ? null : Encoding.UTF8.GetString(Take(count));
    }

    public byte[]? Buffer()
    {
        var count = Int();
        return count < 0 ? null : Take(count).ToArray();
    }

    public Stat Stat() => new(Long(), Long(), Long(), Long(), Int(), Int(), Int(), Long(), Int(), Int(), Long());

    public IReadOnlyList<Acl> Acls()
    {
        var count = Int();
        if (count <= 0) return [];
        var list = new List<Acl>(count);
        for (var i = 0; i < count; i++)
        {
            var perms = Int();
            var scheme = String() ?? "";
            var id = String() ?? "";
            list.Add(new Acl(perms, new Id(scheme, id)));
        }
        return list;
    }

    public IReadOnlyList<string> Strings()
    {
        var count = Int();
        if (count <= 0) return [];
        var list = new List<string>(count);
        for (var i = 0; i < count; i++) list.Add(String() ?? "");
        return list;
    }
}
