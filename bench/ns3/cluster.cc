// bench/cluster.py's topology in ns-3, without NAT (ns-3 has no kube-proxy or conntrack): a client pod
// and two server pods, each on a point-to-point "veth" to its node; each node on a point-to-point
// uplink to a router standing for the fabric switch. N parallel bulk downloads, TOTAL bytes in all,
// from the servers (alternating, as the Service's two backends) to the client. Same rates, delays,
// drop-tail queues, MSS, receive buffer, initial window, delayed ACK, RTO and congestion control
// (CUBIC) as kplab's defaults. Prints one JSON line: packets the pods sent, simulated s, CPU s.
//
// usage: cluster FLOWS [TOTAL_BYTES]

#include <ctime>
#include <cstdio>
#include <cstdlib>

#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"

using namespace ns3;

static uint64_t g_pod_packets = 0;
static uint32_t g_done = 0;
static uint32_t g_flows = 0;
static double g_last_done_s = 0;

static void PodTx(Ptr<const Packet>) { ++g_pod_packets; }

static NetDeviceContainer Wire(Ptr<Node> a, Ptr<Node> b, const char* rate, const char* delay, uint32_t queue) {
  PointToPointHelper p2p;
  p2p.SetDeviceAttribute("DataRate", StringValue(rate));
  p2p.SetChannelAttribute("Delay", StringValue(delay));
  p2p.SetDeviceAttribute("Mtu", UintegerValue(1500));
  p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", QueueSizeValue(QueueSize(std::to_string(queue) + "p")));
  return p2p.Install(a, b);
}

static void SinkRx(uint64_t want, Ptr<PacketSink> sink, Ptr<const Packet>, const Address&) {
  if (sink->GetTotalRx() >= want) {
    ++g_done;
    g_last_done_s = Simulator::Now().GetSeconds();
    if (g_done == g_flows) Simulator::Stop();
  }
}

int main(int argc, char* argv[]) {
  uint32_t flows = argc > 1 ? std::atoi(argv[1]) : 10;
  uint64_t total = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 40000000ULL;
  g_flows = flows;
  uint64_t per_flow = total / flows;

  Config::SetDefault("ns3::TcpL4Protocol::SocketType", TypeIdValue(TcpCubic::GetTypeId()));
  Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(1460));
  Config::SetDefault("ns3::TcpSocket::RcvBufSize", UintegerValue(262144));
  Config::SetDefault("ns3::TcpSocket::SndBufSize", UintegerValue(4194304));
  Config::SetDefault("ns3::TcpSocket::InitialCwnd", UintegerValue(10));
  Config::SetDefault("ns3::TcpSocket::DelAckTimeout", TimeValue(MilliSeconds(40)));
  Config::SetDefault("ns3::TcpSocket::DelAckCount", UintegerValue(2));
  Config::SetDefault("ns3::TcpSocketBase::MinRto", TimeValue(MilliSeconds(200)));
  Config::SetDefault("ns3::TcpSocketBase::Sack", BooleanValue(true));
  Config::SetDefault("ns3::TcpSocketBase::WindowScaling", BooleanValue(true));
  Config::SetDefault("ns3::TcpSocketBase::Timestamp", BooleanValue(false));

  NodeContainer all;
  all.Create(6);
  Ptr<Node> client = all.Get(0), nodeA = all.Get(1), fabric = all.Get(2), nodeB = all.Get(3);
  Ptr<Node> server[2] = {all.Get(4), all.Get(5)};
  InternetStackHelper stack;
  stack.Install(all);

  // kplab's defaults: pod links and fabric links 10 Gbit/s; veth 20 us, fabric 50 us; 1000 packets.
  NetDeviceContainer veth_c = Wire(client, nodeA, "10Gbps", "20us", 1000);
  NetDeviceContainer up_a = Wire(nodeA, fabric, "10Gbps", "50us", 1000);
  NetDeviceContainer up_b = Wire(fabric, nodeB, "10Gbps", "50us", 1000);
  NetDeviceContainer veth_s0 = Wire(server[0], nodeB, "10Gbps", "20us", 1000);
  NetDeviceContainer veth_s1 = Wire(server[1], nodeB, "10Gbps", "20us", 1000);

  Ipv4AddressHelper addr;
  addr.SetBase("10.0.0.0", "255.255.255.252");
  Ipv4InterfaceContainer ic = addr.Assign(veth_c);
  addr.SetBase("172.16.0.0", "255.255.255.252");
  addr.Assign(up_a);
  addr.SetBase("172.16.1.0", "255.255.255.252");
  addr.Assign(up_b);
  addr.SetBase("10.0.1.0", "255.255.255.252");
  Ipv4InterfaceContainer is0 = addr.Assign(veth_s0);
  addr.SetBase("10.0.1.4", "255.255.255.252");
  addr.Assign(veth_s1);
  Ipv4GlobalRoutingHelper::PopulateRoutingTables();

  for (NetDeviceContainer* d : {&veth_c, &veth_s0, &veth_s1}) {
    d->Get(0)->TraceConnectWithoutContext("MacTx", MakeCallback(&PodTx));  // the pod's end of its veth
  }

  Address client_addr = ic.GetAddress(0);
  for (uint32_t i = 0; i < flows; ++i) {
    uint16_t port = 5000 + i;
    PacketSinkHelper sinkh("ns3::TcpSocketFactory", InetSocketAddress(Ipv4Address::GetAny(), port));
    ApplicationContainer sa = sinkh.Install(client);
    Ptr<PacketSink> sink = DynamicCast<PacketSink>(sa.Get(0));
    sink->TraceConnectWithoutContext("Rx", MakeBoundCallback(&SinkRx, per_flow, sink));
    BulkSendHelper bulk("ns3::TcpSocketFactory", InetSocketAddress(ic.GetAddress(0), port));
    bulk.SetAttribute("MaxBytes", UintegerValue(per_flow));
    bulk.SetAttribute("SendSize", UintegerValue(65536));
    ApplicationContainer ba = bulk.Install(server[i % 2]);
    ba.Start(Seconds(0));
  }
  (void)client_addr;

  std::clock_t start = std::clock();
  Simulator::Stop(Seconds(600));
  Simulator::Run();
  double cpu = double(std::clock() - start) / CLOCKS_PER_SEC;
  std::printf("{\"flows\": %u, \"completed\": %u, \"packets\": %llu, \"sim_seconds\": %.4f, \"cpu_seconds\": %.4f}\n",
              flows, g_done, (unsigned long long)g_pod_packets, g_last_done_s, cpu);
  Simulator::Destroy();
  return 0;
}
