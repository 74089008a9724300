"""Health as probes call it: `Check` as Kubernetes' gRPC probe and grpc-health-probe do
(the empty service for the server as a whole, or a service's full name), and `Watch`,
whose stream starts with the current status."""

import unittest

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server import channel

SERVING = health_pb2.HealthCheckResponse.SERVING
# The services accessd reports, besides the server as a whole ("").
SERVICES = [
    "accessd.v1.AccessService",
    "accessd.v1.AdminService",
    "accessd.v1.ReplicationService",
]
# A bound on a call that should answer at once: a safety net, not a timing.
BOUND_SECONDS = 30


class Health(unittest.TestCase):
    def probe(self, user_agent: str) -> health_pb2_grpc.HealthStub:
        probe_channel = channel((("grpc.primary_user_agent", user_agent),))
        self.addCleanup(probe_channel.close)
        return health_pb2_grpc.HealthStub(probe_channel)

    def test_check_as_kubernetes_calls_it(self) -> None:
        # A grpc probe without `service` asks about the server as a whole.
        health = self.probe("kube-probe/1.29")
        answer = health.Check(health_pb2.HealthCheckRequest(), timeout=BOUND_SECONDS)
        self.assertEqual(answer.status, SERVING)

    def test_check_as_grpc_health_probe_calls_it(self) -> None:
        health = self.probe("grpc_health_probe")
        for service in ["", *SERVICES]:
            with self.subTest(service=service):
                answer = health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=BOUND_SECONDS
                )
                self.assertEqual(answer.status, SERVING)

    def test_check_of_an_unknown_service_is_not_found(self) -> None:
        health = self.probe("grpc_health_probe")
        with self.assertRaises(grpc.RpcError) as refused:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=BOUND_SECONDS)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_watch_starts_with_the_current_status(self) -> None:
        health = self.probe("kube-probe/1.29")
        for service in ["", "accessd.v1.AdminService"]:
            with self.subTest(service=service):
                stream = health.Watch(
                    health_pb2.HealthCheckRequest(service=service), timeout=BOUND_SECONDS
                )
                first = next(stream)
                stream.cancel()
                self.assertEqual(first.status, SERVING)


if __name__ == "__main__":
    unittest.main()
