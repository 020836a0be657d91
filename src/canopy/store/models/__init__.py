"""The tables. Every controller-visible row carries desired and observed state plus a lease.

One module per area; importing this package defines every table on `Base.metadata` (Alembic's
env and `create_all` rely on it), and every model is named from here.
"""

from __future__ import annotations

from canopy.store.models.base import Base as Base
from canopy.store.models.base import Leased as Leased
from canopy.store.models.base import Retried as Retried
from canopy.store.models.clouds import FLAVOR_ID_LENGTH as FLAVOR_ID_LENGTH
from canopy.store.models.clouds import Cloud as Cloud
from canopy.store.models.clouds import Flavor as Flavor
from canopy.store.models.clouds import FlavorMapping as FlavorMapping
from canopy.store.models.clouds import FlavorProject as FlavorProject
from canopy.store.models.clouds import Image as Image
from canopy.store.models.clouds import ImageMapping as ImageMapping
from canopy.store.models.clouds import Installation as Installation
from canopy.store.models.hosts import HostAllocation as HostAllocation
from canopy.store.models.hosts import ReservableHost as ReservableHost
from canopy.store.models.identity import ApplicationCredential as ApplicationCredential
from canopy.store.models.identity import LoginFailure as LoginFailure
from canopy.store.models.identity import Project as Project
from canopy.store.models.identity import Quota as Quota
from canopy.store.models.identity import QuotaUsage as QuotaUsage
from canopy.store.models.identity import RoleAssignment as RoleAssignment
from canopy.store.models.identity import Token as Token
from canopy.store.models.identity import User as User
from canopy.store.models.jobs import Job as Job
from canopy.store.models.notifications import Delivery as Delivery
from canopy.store.models.notifications import OutboxEvent as OutboxEvent
from canopy.store.models.notifications import Subscription as Subscription
from canopy.store.models.orchestration import Stack as Stack
from canopy.store.models.orchestration import StackEvent as StackEvent
from canopy.store.models.orchestration import StackResource as StackResource
from canopy.store.models.orchestration import StackSignal as StackSignal
from canopy.store.models.placement import CapacityBlock as CapacityBlock
from canopy.store.models.placement import Claim as Claim
from canopy.store.models.placement import Placement as Placement
from canopy.store.models.reservations import Lease as Lease
from canopy.store.models.reservations import LeaseEvent as LeaseEvent
from canopy.store.models.reservations import LeaseServer as LeaseServer
from canopy.store.models.reservations import Reservation as Reservation
from canopy.store.models.servers import InstanceAction as InstanceAction
from canopy.store.models.servers import InstanceActionEvent as InstanceActionEvent
from canopy.store.models.servers import Keypair as Keypair
from canopy.store.models.servers import KeypairPush as KeypairPush
from canopy.store.models.servers import Server as Server
from canopy.store.models.servers import ServerGroup as ServerGroup
from canopy.store.models.servers import ServerTag as ServerTag
from canopy.store.models.servers import ServerUserData as ServerUserData
from canopy.store.models.software import SoftwareConfigRow as SoftwareConfigRow
from canopy.store.models.software import SoftwareDeploymentRow as SoftwareDeploymentRow
